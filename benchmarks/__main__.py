"""``python -m benchmarks [WORKLOAD ...] [--json] [--quick]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from benchmarks import actors_bench
from benchmarks._report import Figure, print_json, print_table
from runtime.logging import configure_logging

WORKLOADS: dict[str, Callable[[bool], list[Figure]]] = {
    "actors": actors_bench.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Measure Tiercel (figures, never assertions)."
    )
    parser.add_argument(
        "workloads",
        nargs="*",
        metavar="WORKLOAD",
        help=f"workloads to run (default: all): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the usual sizes (smoke run)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.workloads if name not in WORKLOADS]
    if unknown:
        parser.error(
            f"unknown workload {', '.join(map(repr, unknown))}; choose from {', '.join(WORKLOADS)}"
        )
    configure_logging("error")
    figures: list[Figure] = []
    for name in args.workloads or list(WORKLOADS):
        figures.extend(WORKLOADS[name](args.quick))
    if args.json:
        print_json(figures)
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
