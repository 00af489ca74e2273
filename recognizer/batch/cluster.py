"""``recognizer batch`` on Ray: one actor per worker, each loading the models once and
processing whole files with :func:`recognizer.batch.jobs.run_job` (an example is in the README).

The driver (:func:`run_batch`) skips the files whose outputs are complete, hands the others
to idle workers one at a time, and keeps each file's one result. A worker that dies (killed,
out of memory, its node lost) is replaced, its file's temporary outputs deleted and the file
handed out again, up to ``retries`` times. Ctrl-C or SIGTERM stops the workers, deletes
their temporary outputs and writes the table and summary of what is complete. Either way
``numbers.csv`` and ``summary.json`` (and ``numbers.geojson`` with a GPS track) are rebuilt
from the per-file logs on disk.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognizer.batch.jobs import DEFAULT_BATCH, Job, JobResult, frame_total, remove_parts, result_state, run_job
from recognizer.batch.results import BatchReport, write_json, write_numbers_csv, write_numbers_geojson
from recognizer.errors import EXIT_FAILED, CLIError

__all__ = ["INSTALL_HINT", "BatchConfig", "BatchError", "BatchReport", "require_ray", "run_batch"]

log = logging.getLogger(__name__)

INSTALL_HINT = "recognizer batch needs Ray: pip install 'recognizer[batch]' (or pip install 'ray>=2.9')"
LOCAL_OBJECT_STORE = 128 * 2**20
"""Object store of a local Ray instance: jobs and results are small, the frames never travel."""


class BatchError(CLIError):
    """The run could not start (Ray, the models, the output folder); one line, exit status
    ``code`` (1 unless said otherwise)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message, code)


def require_ray() -> Any:
    """The ``ray`` module, or :class:`BatchError` (exit 3) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BatchError(INSTALL_HINT, code=3) from None
    return ray


@dataclass
class BatchConfig:
    """Settings of a batch run.

    Attributes:
        out: output folder (created).
        load: a picklable callable that builds the recognizer in a worker.
        workers: Ray workers (default: the CPUs of this machine or cluster, or its GPUs divided
            by ``gpus_per_worker``).
        gpus_per_worker: GPUs per worker (0: CPU workers with one torch thread each).
        retries: times a file whose worker died is handed out again.
        address: Ray cluster to join (``auto``, ``ray://host:10001``); None starts Ray here.
        batch: frames per inference call.
        progress: show a progress bar on stderr.
        ignore_signals_after: keep SIGINT/SIGTERM ignored after a signal stopped the run (CLI).
        connect_timeout: seconds to wait for the Ray cluster at ``address`` to answer before
            giving up (Ray itself retries for minutes, and cannot be interrupted meanwhile).
        numbers: evidence pictures, positions and known numbers for every file
            (:class:`recognizer.output.sinks.numbers.NumbersPlan`; None: none of them).
        reader: ``digits``, ``fast`` or ``accurate``: whether each worker's text reader reads
            the tracks (and its text detector looks at a frame a second) beside the digit models
            (:func:`recognizer.live.textworker.make_checker`).
    """

    out: str | os.PathLike[str]
    load: Callable[[], Any]
    save_video: bool = False
    workers: int | None = None
    gpus_per_worker: float = 0.0
    retries: int = 2
    address: str | None = None
    batch: int = DEFAULT_BATCH
    progress: bool = False
    verbose: bool = False
    ignore_signals_after: bool = False
    connect_timeout: float = 15.0
    numbers: Any = None
    reader: str = "digits"


# --------------------------------------------------------------------------- the Ray side


class BatchWorker:
    """A Ray actor: the models, loaded once; one file at a time."""

    def __init__(self, load: Callable[[], Any], out: str, save_video: bool, batch: int, threads: int | None, progress: Any,
                 numbers: Any = None, reader: str = "digits") -> None:
        from recognizer.live.threads import configure_threads

        configure_threads(threads)
        self.out, self.save_video, self.batch, self.progress = out, save_video, batch, progress
        self.numbers = numbers
        self.reader = reader
        self.recognizer, self.error = None, None
        try:
            self.recognizer = load()
        except Exception as exc:  # noqa: BLE001 - reported by ready() as one line
            self.error = str(exc) or type(exc).__name__

    def ready(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "node": os.uname().nodename, "error": self.error}

    def process(self, job: Job) -> JobResult:
        last = [0.0]

        def on_frame(n: int) -> None:
            now = time.monotonic()
            if self.progress is not None and now - last[0] >= 0.5:
                last[0] = now
                self.progress.report.remote(job.name, n)

        return run_job(job, self.out, self.recognizer, save_video=self.save_video, batch=self.batch, on_frame=on_frame,
                       numbers=self.numbers, reader=self.reader)


class BatchProgress:
    """A Ray actor holding each running file's frames so far (for the driver's bar)."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    def report(self, name: str, frames: int) -> None:
        self.frames[name] = frames

    def snapshot(self) -> dict[str, int]:
        return dict(self.frames)


@dataclass
class _Slot:
    actor: Any
    starting: Any = None  # ref of ready() while the worker starts
    job: Job | None = None
    ref: Any = None  # ref of process() while it runs a job


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + an empty SETTINGS frame


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must answer, and answer as Ray does:
    Ray's GCS and its client server speak gRPC, whose HTTP/2 server answers a client's
    connection preface with a SETTINGS frame. Ray itself would retry for minutes on a typo or
    on a port where something else listens."""
    import socket

    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or "://" in target:
        return  # "auto": Ray finds the cluster started on this node, and says soon enough when there is none
    try:
        conn = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except OSError as exc:
        raise BatchError(f"cannot join the Ray cluster at '{address}': nothing answers there ({exc.strerror or exc})", code=2) from None
    reply = b""
    try:
        with conn:
            conn.settimeout(timeout)
            conn.sendall(_HTTP2_PREFACE)
            while len(reply) < 9:
                chunk = conn.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except TimeoutError:
        raise BatchError(f"cannot join the Ray cluster at '{address}': something listens there but sent no answer within "
                         f"{timeout:g} s; is it a Ray head node's port?", code=2) from None
    except OSError:
        pass  # reset by the other side: judged by what came before, below
    if len(reply) < 9 or reply[3] != 0x04:  # frame type 4: SETTINGS
        raise BatchError(f"cannot join the Ray cluster at '{address}': something answers there but it is not Ray "
                         "(no gRPC reply); check the host and port ('ray start --head' prints them)", code=2)


def _join(ray: Any, address: str, timeout: float, *, verbose: bool = False, **kwargs: Any) -> None:
    """``ray.init(address=...)`` within ``timeout`` seconds, and interruptible.

    Ray's connection retries for minutes inside native code, where neither Ctrl-C nor SIGTERM
    reaches Python; here it runs on a helper thread while the main thread waits in short
    steps (a signal ends the wait at once) and gives up after ``timeout``. Meanwhile the
    native client's retry warnings (every 5 s) are kept off the terminal (shown with
    ``verbose``): the one line that says why it gave up is enough. A given-up thread is left
    behind (a daemon: it ends with the process, whose native stderr is then silenced too).
    """
    import atexit
    import tempfile
    import threading

    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            ray.init(address=address, **kwargs)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    ray_log = logging.getLogger("ray")
    level = ray_log.level
    ray_log.setLevel(logging.ERROR)  # Ray warns that it cannot set its SIGTERM handler off the main thread: ours is set
    captured = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(captured.fileno(), 2)
    try:
        thread = threading.Thread(target=connect, name="ray-connect", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.1)
    finally:
        ray_log.setLevel(level)
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if verbose:
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
        captured.close()
    if not outcome:
        atexit.register(_silence_native_stderr, thread)
        raise BatchError(f"cannot join the Ray cluster at '{address}': no answer from Ray within {timeout:g} s "
                         "(--connect-timeout)", code=2)
    if outcome[0] is not None:
        raise outcome[0]


def _silence_native_stderr(thread: Any) -> None:
    """At exit, while an abandoned connection thread still runs: file descriptor 2 to /dev/null
    (Python's own messages have all been written by then)."""
    if thread.is_alive():
        with contextlib.suppress(OSError):
            sys.stderr.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)


def _start_ray(ray: Any, cfg: BatchConfig) -> tuple[bool, str]:
    """Start Ray here or join ``cfg.address``; returns (whether this call started it, address)."""
    from recognizer.live.threads import cpu_cores

    if ray.is_initialized():
        return False, "existing"
    quiet = {"log_to_driver": cfg.verbose, "logging_level": logging.INFO if cfg.verbose else logging.ERROR}
    try:
        if cfg.address:
            _check_reachable(cfg.address, min(5.0, cfg.connect_timeout))
            _join(ray, cfg.address, cfg.connect_timeout, verbose=cfg.verbose, **quiet)
            return True, cfg.address
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        cpus = max(cpu_cores(), cfg.workers or 0)
        ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE, **quiet)
        return True, "local"
    except BatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to start is one line
        where = f"join the Ray cluster at '{cfg.address}'" if cfg.address else "start Ray on this machine"
        raise BatchError(f"cannot {where}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc


def _worker_count(ray: Any, cfg: BatchConfig) -> int:
    resources = ray.cluster_resources()
    if cfg.gpus_per_worker > 0:
        gpus = resources.get("GPU", 0)
        if gpus < cfg.gpus_per_worker:
            raise BatchError(f"--gpus-per-worker {cfg.gpus_per_worker}: the Ray cluster has {gpus:g} GPU(s)", code=2)
        return cfg.workers or max(int(gpus // cfg.gpus_per_worker), 1)
    return cfg.workers or max(int(resources.get("CPU", 1)), 1)


def _one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One batch run at a time per output folder."""
    fd = os.open(out / ".batch.lock", os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BatchError(f"another recognizer batch is writing to '{out}'; wait for it or choose another --out", code=2) from None
        yield
    finally:
        os.close(fd)


class _Run:
    """The scheduling loop of one batch run on a started Ray."""

    def __init__(self, ray: Any, cfg: BatchConfig, pending: list[Job], report: BatchReport) -> None:
        self.ray, self.cfg, self.report = ray, cfg, report
        self.out = Path(cfg.out)
        self.queue: deque[Job] = deque(pending)
        self.deaths: Counter[str] = Counter()
        self.results: dict[str, JobResult] = {}
        self.slots: list[_Slot] = []
        self.starts_left = 0
        self.progress = ray.remote(num_cpus=0)(BatchProgress).remote() if cfg.progress else None
        gpu = cfg.gpus_per_worker > 0
        self.actor_class = ray.remote(num_cpus=1, num_gpus=cfg.gpus_per_worker or 0, max_restarts=0)(BatchWorker)
        self.actor_args = (cfg.load, str(self.out.resolve()), cfg.save_video, cfg.batch, None if gpu else 1, self.progress, cfg.numbers,
                           cfg.reader)

    def _new_slot(self) -> _Slot:
        self.starts_left -= 1
        actor = self.actor_class.remote(*self.actor_args)
        return _Slot(actor, starting=actor.ready.remote())

    def _kill(self, slot: _Slot) -> None:
        with contextlib.suppress(Exception):
            self.ray.kill(slot.actor, no_restart=True)

    def run(self, n: int, bar: Any, totals: dict[str, int | None]) -> None:
        t0 = time.monotonic()
        self.starts_left = 3 * n + self.cfg.retries
        self.report.workers = n = min(n, max(len(self.queue), 1))
        self.slots = [self._new_slot() for _ in range(n)]
        while self.queue or any(s.job is not None for s in self.slots):
            waiting = {(s.starting if s.starting is not None else s.ref): s for s in self.slots if s.starting is not None or s.ref is not None}
            if not waiting:
                raise BatchError("no Ray worker could be started (they died while loading the models)")
            done, _ = self.ray.wait(list(waiting), num_returns=1, timeout=0.5)
            for ref in done:
                slot = waiting[ref]
                if slot.starting is not None:
                    self._started(slot)
                    if not self.report.workers_ready_seconds and all(s.starting is None for s in self.slots):
                        self.report.workers_ready_seconds = time.monotonic() - t0
                else:
                    self._finished(slot)
            for slot in self.slots:
                if slot.starting is None and slot.job is None and self.queue:
                    slot.job = self.queue.popleft()
                    slot.ref = slot.actor.process.remote(slot.job)
            if bar is not None:
                self._update_bar(bar, totals)

    def _started(self, slot: _Slot) -> None:
        try:
            info = self.ray.get(slot.starting)
        except Exception as exc:  # noqa: BLE001 - died while starting: try another
            log.warning("a Ray worker died while starting: %s", _one_line(exc))
            self._replace(slot)
            return
        slot.starting = None
        if info.get("error"):
            raise BatchError(f"a Ray worker cannot load the models: {info['error']}", code=2)
        log.debug("worker pid %s on %s ready", info["pid"], info["node"])

    def _replace(self, slot: _Slot) -> None:
        self._kill(slot)
        index = self.slots.index(slot)
        if self.starts_left > 0:
            self.slots[index] = self._new_slot()
        else:
            del self.slots[index]

    def _finished(self, slot: _Slot) -> None:
        from ray.exceptions import RayTaskError

        job, ref = slot.job, slot.ref
        assert job is not None
        slot.job, slot.ref = None, None
        try:
            result: JobResult = self.ray.get(ref)
        except RayTaskError as exc:  # the job's own code raised: a bug, reported as one line
            result = JobResult(job.name, job.path, status="failed", error=_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - the worker died (killed, out of memory, node lost)
            self.deaths[job.name] += 1
            remove_parts(self.out, job)
            self._replace(slot)
            died = self.deaths[job.name]
            log.warning("the worker processing %s died (%s); %s", job.path, _one_line(exc),
                        "retrying" if died <= self.cfg.retries else "giving up")
            if died <= self.cfg.retries:
                self.report.retried += 1
                self.queue.appendleft(job)
                return
            result = JobResult(job.name, job.path, status="failed", attempts=died,
                               error=f"its worker died {died} time(s) (killed, or out of memory): {_one_line(exc)}")
        result.attempts = self.deaths[job.name] + 1
        self.results[job.name] = result

    def _update_bar(self, bar: Any, totals: dict[str, int | None]) -> None:
        running = {s.job.name for s in self.slots if s.job is not None}
        live: dict[str, int] = {}
        if self.progress is not None:
            with contextlib.suppress(Exception):
                live = self.ray.get(self.progress.snapshot.remote(), timeout=2)
        frames = sum(r.frames for r in self.results.values()) + sum(v for k, v in live.items() if k in running)
        bar.n = frames
        bar.set_description(f"files {len(self.results)}/{len(totals)}", refresh=False)
        bar.refresh()

    def stop(self) -> list[Job]:
        """Kill every worker, wait until they are gone; returns the jobs that were running."""
        running = [s.job for s in self.slots if s.job is not None]
        refs = [s.ref for s in self.slots if s.ref is not None]
        for slot in self.slots:
            self._kill(slot)
        if self.progress is not None:
            with contextlib.suppress(Exception):
                self.ray.kill(self.progress, no_restart=True)
        if refs:  # a killed worker's task fails once its process is gone
            with contextlib.suppress(Exception):
                self.ray.wait(refs, num_returns=len(refs), timeout=10)
        return running


def run_batch(jobs: list[Job], cfg: BatchConfig) -> BatchReport:
    """Process every job not complete yet on Ray; write ``numbers.csv`` and ``summary.json``.

    A job whose result is whole but was made from another input (the file was replaced, as a
    dashcam reuses its file names) is done again, with a warning, and listed in the report's
    ``changed``. While it runs, what Ray prints on stdout (a dead worker's report) goes to
    stderr: stdout is left to the results.
    """
    from recognizer.live.signals import RunSignals, Terminated

    ray = require_ray()
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create the output folder '{out}': {exc.strerror or exc}", code=2) from exc
    t0 = time.monotonic()
    report = BatchReport(files=len(jobs), out=str(out))
    signals = RunSignals(ignore_after=cfg.ignore_signals_after)
    with _locked(out), signals.installed(), contextlib.redirect_stdout(sys.stderr):
        states = {j.name: result_state(out, j, save_video=cfg.save_video) for j in jobs}
        skipped = [j for j in jobs if states[j.name][0]]
        pending = [j for j in jobs if j not in skipped]
        results = {j.name: JobResult(j.name, j.path, status="skipped", attempts=0) for j in skipped}
        for job in pending:
            changed = states[job.name][1]
            if changed is not None:
                log.warning("%s changed since its result was made (%s): reading it again", job.path, changed)
                report.changed.append({"file": job.path, "name": job.name, "reason": changed})
        started, run, bar = False, None, None
        try:
            for job in pending:
                remove_parts(out, job)
            if pending:
                t_ray = time.monotonic()
                started, report.address = _start_ray(ray, cfg)
                with contextlib.suppress(ValueError):  # ray.init sets its own SIGTERM handler (sys.exit)
                    if signal.getsignal(signal.SIGINT) == signals.handler:
                        signal.signal(signal.SIGTERM, signals.handler)
                report.ray_start_seconds = time.monotonic() - t_ray
                report.workers = _worker_count(ray, cfg)
                totals = {j.name: frame_total(j) for j in pending} if cfg.progress else {}
                if cfg.progress:
                    from tqdm import tqdm

                    bar = tqdm(total=sum(v or 0 for v in totals.values()) or None, unit="frame", dynamic_ncols=True, file=sys.stderr)
                run = _Run(ray, cfg, pending, report)
                run.run(report.workers, bar, totals)
                results.update(run.results)
        except KeyboardInterrupt as exc:
            # Ray's ray.wait turns what a signal handler raises into a plain KeyboardInterrupt.
            report.status = "terminated" if isinstance(exc, Terminated) or signals.first == signal.SIGTERM else "interrupted"
        except BaseException as exc:
            report.status = "failed"
            report.error = str(exc).strip().split("\n")[0] or type(exc).__name__
            raise
        finally:
            with signals.closing():
                if run is not None:
                    if report.status in ("interrupted", "terminated"):
                        stopped = run.stop()
                        results.update(run.results)
                        for job in stopped:
                            remove_parts(out, job)
                    else:
                        run.stop()
                if bar is not None:
                    bar.close()
                if started:
                    with contextlib.suppress(Exception):
                        ray.shutdown()
                for change in report.changed:
                    if change["name"] in results:
                        results[change["name"]].input_changed = change["reason"]
                report.results = [results[j.name] for j in jobs if j.name in results]
                if report.status == "completed" and report.failed:
                    report.status = "failed"
                report.numbers = write_numbers_csv(out, jobs)
                if cfg.numbers is not None and cfg.numbers.track is not None:
                    write_numbers_geojson(out, jobs)
                report.seconds = time.monotonic() - t0
                write_json(out / "summary.json", report.to_dict())
    return report
