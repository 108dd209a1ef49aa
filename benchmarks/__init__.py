"""Tiercel's benchmark harness: ``python -m benchmarks [WORKLOAD ...] [--json]``."""
