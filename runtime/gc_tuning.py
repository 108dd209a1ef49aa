"""Garbage-collector settings for a process that runs Tiercel as its main job.

An engine makes many small objects per task run (events, actors, messages). With
CPython's default first threshold (700 allocations), a fan-out of 10,000 task runs spent
about a quarter of its time in collections on this project's machines; at 7,000 it spends
about 7% (``benchmarks/README.md``). Cyclic garbage lives a little longer; nothing else
changes. ``gc.freeze`` moves what start-up made (modules, flows, configuration) out of the
collector's sight: it is never garbage, and full collections no longer walk it.

The ``tiercel`` command calls :func:`tune_for_engine`; an application that embeds Tiercel
owns its process and decides for itself (calling it is fine).
"""

from __future__ import annotations

import gc

FIRST_THRESHOLD = 7_000


def tune_for_engine() -> None:
    """Raise the collector's first threshold (never lower one set higher already)."""
    first, second, third = gc.get_threshold()
    if first and first < FIRST_THRESHOLD:
        gc.set_threshold(FIRST_THRESHOLD, second, third)


def freeze_startup() -> None:
    """Collect once, then keep every object alive now out of later collections."""
    gc.collect()
    gc.freeze()
