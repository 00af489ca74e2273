"""Benchmarks run from a checkout (``python -m benchmarks.memory``); not installed, not tests."""
