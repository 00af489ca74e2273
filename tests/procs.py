"""Helpers for tests that run ``recognizer`` as a real process.

Import with ``from procs import stop`` (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen) -> None:
    """Kill ``proc`` if it still runs (a test that failed half-way leaves no process behind)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
