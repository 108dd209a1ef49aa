"""Figures, machine information, and how they are printed (a table, or JSON lines)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from runtime import __version__


class Figure(msgspec.Struct, kw_only=True):
    """One measured figure. ``params`` carries whatever the workload was run with."""

    name: str
    value: float
    unit: str
    store: str | None = None
    ratio: float | None = None
    ratio_to: str | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "tiercel": __version__,
    }


def median(samples: Sequence[float]) -> float:
    """The median of ``samples``."""
    return statistics.median(samples)


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, nearest-rank."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def print_json(figures: Sequence[Figure]) -> None:
    """One JSON object per line, each with the machine it was measured on."""
    info = machine()
    encoder = msgspec.json.Encoder()
    for figure in figures:
        record = msgspec.to_builtins(figure)
        record["machine"] = info
        sys.stdout.write(encoder.encode(record).decode() + "\n")
    sys.stdout.flush()


def print_table(figures: Sequence[Figure]) -> None:
    """A human-readable table, with the machine underneath."""
    table = Table(title="Tiercel benchmarks")
    table.add_column("figure")
    table.add_column("store")
    table.add_column("params")
    table.add_column("value", justify="right")
    table.add_column("unit")
    table.add_column("vs.", justify="right")
    for figure in figures:
        ratio = ""
        if figure.ratio is not None:
            ratio = f"{figure.ratio:.3g} x {figure.ratio_to}"
        params = " ".join(f"{k}={v}" for k, v in figure.params.items())
        table.add_row(
            figure.name, figure.store or "", params, _format(figure.value), figure.unit, ratio
        )
    console = Console(width=max(Console().width, 160))
    console.print(table)
    info = machine()
    console.print(
        f"{info['cpu']}, {info['cores']} cores, {info['implementation']} {info['python']}, "
        f"tiercel {info['tiercel']}"
    )


def _format(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"
