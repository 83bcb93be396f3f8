"""Benchmarks: run each with `python -m benchmarks.<name>` (see benchmarks/README.md)."""
