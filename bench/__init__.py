"""Benchmarks: `make bench` (python -m bench). Separate from tests; nothing here asserts a time."""
