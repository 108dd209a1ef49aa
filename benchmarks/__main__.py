"""``python -m benchmarks [WORKLOAD ...] [--store memory|sqlite|postgres] [--peers] [--json]
[--quick]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import actors_bench, engine_bench
from benchmarks._report import Figure, print_json, print_table
from runtime.gc_tuning import tune_for_engine
from runtime.logging import configure_logging

STORES = ("memory", "sqlite", "postgres")
DEFAULT_STORES = ("memory", "sqlite")


def _store_workload(name: str) -> Callable[[list[str], bool], list[Figure]]:
    return lambda stores, quick: engine_bench.run_store_workload(name, stores, quick)


def _cluster(stores: list[str], quick: bool) -> list[Figure]:
    from benchmarks import cluster_bench

    return cluster_bench.run(quick)


WORKLOADS: dict[str, Callable[[list[str], bool], list[Figure]]] = {
    "actors": lambda stores, quick: actors_bench.run(quick),
    "coldstart": lambda stores, quick: engine_bench.coldstart(quick),
    **{name: _store_workload(name) for name in engine_bench.STORE_WORKLOADS},
    "cluster": _cluster,
}


def compare_stores(figures: list[Figure]) -> None:
    """Give each SQLite figure its ratio to the same figure on the memory store, and each
    PostgreSQL figure its ratio to SQLite's (to memory's when SQLite did not run)."""
    by_store: dict[str, dict[tuple[str, tuple[tuple[str, Any], ...]], Figure]] = {}
    for figure in figures:
        if figure.store is not None:
            by_store.setdefault(figure.store, {})[_key(figure)] = figure
    references = {"sqlite": ("memory",), "postgres": ("sqlite", "memory")}
    for figure in figures:
        if figure.store not in references or figure.ratio is not None:
            continue
        for reference in references[figure.store]:
            twin = by_store.get(reference, {}).get(_key(figure))
            if twin is not None and twin.value:
                figure.ratio = figure.value / twin.value
                figure.ratio_to = reference
                break


def _key(figure: Figure) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return figure.name, tuple(sorted(figure.params.items()))


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
    parser.add_argument(
        "--store",
        action="append",
        choices=STORES,
        help="store(s) for the engine workloads (default: memory and sqlite; postgres: "
        "$TIERCEL_BENCH_PG_URL, by default postgres@127.0.0.1:5432/test)",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also run Prefect 3 and Dagster on equivalent workloads (installed on first use "
        "into $TIERCEL_BENCH_CACHE or ~/.cache/tiercel/bench) and print Tiercel / peer",
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
    tune_for_engine()  # the collector as the tiercel command sets it
    stores = args.store or list(DEFAULT_STORES)
    figures: list[Figure] = []
    chosen = args.workloads or ([] if args.peers else list(WORKLOADS))
    for name in chosen:
        figures.extend(WORKLOADS[name](stores, args.quick))
    if args.peers:
        from benchmarks import peers_bench

        figures.extend(peers_bench.run(args.quick))
    compare_stores(figures)
    if args.json:
        print_json(figures)
    else:
        print_table(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
