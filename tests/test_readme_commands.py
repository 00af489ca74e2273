"""The README and the command line cannot drift apart (issue 21).

* Every ``recognizer ...`` command line in a README code block is parsed by the real parser,
  and the commands of each block run in order in one folder, on small inputs made here (a
  generated clip, images, a folder of clips, a GPS track; the tiny untrained models of
  ``conftest.py`` in place of the weights), unless a command needs a camera, a stream, a
  window, a GPU, Ray or the demo's shipped weights: those are parsed only (``recognizer batch``
  runs in ``tests/test_batch.py``, the demo in ``tests/test_demo.py``). A README command
  naming an input this file does not know fails until a stand-in is added to :data:`INPUTS`.
* What the README says about option values (ranges, what is refused) is checked by running
  the command with those values: each row of :data:`CLAIMS` is a sentence that must be in the
  README and the exit statuses the CLI must give.
"""
from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

import cv2
import pytest

from recognizer.cli import build_parser, main
from recognizer.synth.footage import ClipSpec, make_bench_clip, synthetic_frame

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SPEC = ClipSpec(width=96, height=64, fps=24.0, numbers=("12",))


def readme_blocks() -> list[list[str]]:
    """The ``recognizer ...`` commands of each README code block that has some, in order,
    without their comments."""
    blocks = []
    for block in re.findall(r"```[\w-]*\n(.*?)```", README, re.S):
        found = []
        for line in block.splitlines():
            for part in line.split("&&"):
                text = part.strip()
                if text.startswith("recognizer "):
                    found.append(text)
        if found:
            blocks.append(found)
    return blocks


BLOCKS = readme_blocks()
COMMANDS = [line for block in BLOCKS for line in block]

PARSE_ONLY = {
    "a camera": lambda argv: argv[0] == "run" and any(a.split("=")[-1].isdigit() for a in argv[1:] if not a.startswith("-")),
    "a stream": lambda argv: any("://" in a for a in argv),
    "a window": lambda argv: "--show" in argv,
    "a GPU": lambda argv: "cuda" in " ".join(argv),
    "Ray": lambda argv: argv[0] == "batch",
    "the demo's clip and weights": lambda argv: argv[0] == "demo",
}
"""Why a command is only parsed, by what it needs (``recognizer batch`` runs in
``tests/test_batch.py``, the demo in ``tests/test_demo.py``)."""


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), synthetic_frame(3, SPEC))


def _videos(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in (1, 2):
        make_bench_clip(folder / f"part{k}.mp4", 6, SPEC)


def _drive(path: Path) -> None:
    """A clip that says when it was taken (``creation_time``), for --gpx."""
    from mapping_helpers import write_clip

    write_clip(path, 12, fps=15.0)


def _gpx(path: Path) -> None:
    from mapping_helpers import START, fix_times, write_gpx

    write_gpx(path, fix_times(START.timestamp() - 5, START.timestamp() + 30))


INPUTS = {
    "photo1.jpg": _image, "photo2.png": _image, "x.png": _image,
    "folder/": lambda p: _image(p / "a.png"), "frames/": lambda p: [_image(p / f"f{k}.png") for k in range(4)],
    "data/svhn/test/": lambda p: [_image(p / f"{k}.png") for k in (1, 2)],
    "drive.mp4": lambda p: make_bench_clip(p, 12, SPEC), "dashcam/": _videos, "dashcam.mp4": _drive,
    "drive.gpx": _gpx, "street.txt": lambda p: p.write_text("1-99\n"),
}
"""The inputs the README's commands name, made small (a file an earlier command of the same
block wrote is used as it is)."""

OUTPUT_OPTIONS = {"--save", "--dump", "--log", "--save-dir", "--out", "--json", "--evidence", "--geojson", "-o"}
INPUT_OPTIONS = {"--gpx", "--nmea", "--expect"}
MODEL_OPTIONS = {"--detector": "detector", "--classifier": "classifier"}
IDS = [shlex.join(shlex.split(c, comments=True)[1:])[:60] for c in COMMANDS]


@pytest.mark.parametrize("line", COMMANDS, ids=IDS)
def test_readme_command_parses(line: str) -> None:
    argv = shlex.split(line, comments=True)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"README command does not parse (exit {exc.code}): {line}")
    assert callable(getattr(args, "func", None)), line


def _prepared(line: str, cwd: Path, models: dict[str, Path]) -> list[str]:
    """``line``'s arguments with its inputs made in ``cwd`` and the tiny models in place of the weights."""
    argv = shlex.split(line, comments=True)[1:]
    run: list[str] = []
    given_models = False
    k = 0
    while k < len(argv):
        token = argv[k]
        if token in MODEL_OPTIONS:  # the README's weights: the tiny test models in their place
            run += [token, str(models[MODEL_OPTIONS[token]])]
            given_models, k = True, k + 2
            continue
        if token in OUTPUT_OPTIONS:
            run += argv[k : k + 2]
            k += 2
            continue
        if token in INPUT_OPTIONS:
            run.append(token)
            k += 1
            token = argv[k]
        elif token.startswith("-") or k == 0:
            run.append(token)
            k += 1
            continue
        if "*" in token and f"'{token}'" not in line:  # the shell expands an unquoted glob
            for name in ("photo2.png", "x.png"):
                INPUTS[name](cwd / name)
            run += sorted(glob.glob(token))
            k += 1
            continue
        if not (cwd / token).exists():
            assert token in INPUTS, f"README command names '{token}': add a small stand-in to INPUTS"
            INPUTS[token](cwd / token)
        run.append(token)
        k += 1
    if argv[0] in ("image", "run", "bench") and not given_models:
        run[1:1] = ["--detector", str(models["detector"]), "--classifier", str(models["classifier"])]
    if argv[0] in ("image", "run", "bench") and "--device" not in run:
        run += ["--device", "cpu"]
    if argv[0] == "run":
        run.append("--no-progress")
    return run


@pytest.mark.timeout(240)
@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{k}-{shlex.split(b[0], comments=True)[1]}" for k, b in enumerate(BLOCKS)])
def test_readme_commands_run_on_small_inputs(block: list[str], tmp_path: Path, tiny_checkpoints: dict[str, Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands of one code block, in order, in one folder (a later one may read what an
    earlier one wrote); those that need what this machine lacks are parsed only, and so is a
    command that reads what such a command would have written."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECOGNIZER_WEIGHTS", raising=False)
    unmade: set[str] = set()  # outputs of commands that were only parsed
    ran = 0
    for line in block:
        argv = shlex.split(line, comments=True)[1:]
        needs = [why for why, test in PARSE_ONLY.items() if test(argv)]
        if needs or unmade & set(argv):
            unmade |= {argv[k + 1] for k, a in enumerate(argv[:-1]) if a in OUTPUT_OPTIONS}
            continue
        assert main(_prepared(line, tmp_path, tiny_checkpoints)) == 0, f"README command failed: {line}"
        ran += 1
    if not ran:
        pytest.skip("parsed only: every command needs a camera, a stream, a window, a GPU, Ray or the demo's weights")


# -- what the README says about option values --------------------------------------------------------


CLAIMS = [
    ("`--fps F` (above 0, at most 1000) sets the source's frame rate",
     [(["run", "drive.mp4", "--fps", "1000", "--max-frames", "2"], 0), (["run", "drive.mp4", "--fps", "1001"], 2)]),
    ("`--fps 0`, a negative rate or NaN is refused (exit 2)",
     [(["run", "drive.mp4", "--fps", "0"], 2), (["run", "drive.mp4", "--fps=-5"], 2), (["run", "drive.mp4", "--fps", "nan"], 2)]),
    ("`--batch N` (1 to 64;", [(["run", "drive.mp4", "--batch", "64", "--max-frames", "2"], 0), (["run", "drive.mp4", "--batch", "65"], 2)]),
    ("`--batch 300` took 2.1 GiB, so it is refused", [(["run", "drive.mp4", "--batch", "300"], 2)]),
    ("`--workers N` inference threads (1 to 64) and `--threads N` torch threads (1 to 256)",
     [(["run", "drive.mp4", "--workers", "65"], 2), (["run", "drive.mp4", "--threads", "257"], 2),
      (["run", "drive.mp4", "--workers", "1", "--threads", "1", "--max-frames", "2"], 0)]),
    ("`--fragment-seconds S` (default 1, from 0.1 to 60)",
     [(["run", "drive.mp4", "--save", "o.mp4", "--fragment-seconds", "0.1"], 0), (["run", "drive.mp4", "--fragment-seconds", "0.09"], 2),
      (["run", "drive.mp4", "--fragment-seconds", "61"], 2)]),
    ("`--log` is one file (`{name}` is refused there)", [(["run", "drive.mp4", "--log", "{name}.jsonl"], 2)]),
    ("(`--batch` 1 to 64, `--retries` 0 to 100, `--gpus-per-worker` below) are usage errors",
     [(["batch", "drive.mp4", "--out", "o", "--batch", "65"], 2), (["batch", "drive.mp4", "--out", "o", "--retries", "101"], 2)]),
    ("`--workers N` to choose, 1 to 4096", [(["batch", "drive.mp4", "--out", "o", "--workers", "4097"], 2)]),
    ("a share of one GPU down to 0.0001, or whole GPUs up to 64",
     [(["batch", "drive.mp4", "--out", "o", "--gpus-per-worker", "0.00005"], 2), (["batch", "drive.mp4", "--out", "o", "--gpus-per-worker", "65"], 2),
      (["batch", "drive.mp4", "--out", "o", "--gpus-per-worker", "1.5"], 2)]),
    ("within `--connect-timeout S` seconds (default 15)", [(["batch", "drive.mp4", "--out", "o", "--connect-timeout", "0.5"], 2)]),
]
"""(a sentence of the README, [(command, exit status)]): README wording and CLI behaviour together."""


def _normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sentence, runs", CLAIMS, ids=[c[0][:40] for c in CLAIMS])
def test_readme_claims_about_option_values_hold(sentence: str, runs: list, tmp_path: Path, models: list[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert _normalized(sentence) in _normalized(README), f"the README no longer says: {sentence}"
    monkeypatch.chdir(tmp_path)
    make_bench_clip(tmp_path / "drive.mp4", 6, SPEC)
    if any(argv[0] == "batch" for argv, _ in runs):
        ray_batch = pytest.importorskip("recognizer.batch.cluster")
        pytest.importorskip("ray")

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("a usage error must come before Ray starts")

        monkeypatch.setattr(ray_batch, "_start_ray", refuse)
    for argv, code in runs:
        try:
            got = main([*argv[:1], *models, *argv[1:], *(["--no-progress"] if argv[0] in ("run", "batch") else [])])
        except SystemExit as exc:
            got = exc.code
        assert got == code, f"{' '.join(argv)}: exit {got}, the README says {code}"


def test_every_readme_command_is_seen() -> None:
    """The extraction finds the commands the README is known to show (a broken regex finds none)."""
    assert len(COMMANDS) >= 10 and any(c.startswith("recognizer run") for c in COMMANDS)
    assert any(c.startswith("recognizer batch") for c in COMMANDS) and any(c.startswith("recognizer image") for c in COMMANDS)
    assert not [c for c in COMMANDS if c.endswith("\\")], "a command continued on the next line is not read whole"
