"""train.detector under torchrun: DistributedDataParallel with the gloo backend, 2 CPU processes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(240)
def test_two_process_gloo_run_trains_and_rank0_writes_a_checkpoint(tmp_path: Path) -> None:
    from svhn_fixtures import make_svhn_dir

    from recognizer.models import load_checkpoint

    split = make_svhn_dir(tmp_path, n_images=6)
    out = tmp_path / "ddp"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        "-m", "train.detector", "--train", str(split), "--train-images", "1-4", "--val", str(split),
        "--val-images", "5-6", "--epochs", "1", "--max-steps", "2", "--batch-size", "1",
        "--min-size", "64", "--max-size", "96", "--workers", "0", "--device", "cpu",
        "--dist-backend", "gloo", "--no-progress", "--out", str(out),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Only rank 0 writes: one last.pt/best.pt pair, no leftovers from rank 1.
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "last.pt"]
    ckpt = load_checkpoint(out / "last.pt", kind="detector")
    assert ckpt.metadata["world_size"] == 2
    # 4 training images over 2 ranks at batch 1: 2 steps per rank in the epoch.
    assert ckpt.extra["step"] == 2 and ckpt.metadata["train_size"] == 4
    assert proc.stdout.count("held-out AP@0.5:") == 1  # the final report comes from rank 0 only
