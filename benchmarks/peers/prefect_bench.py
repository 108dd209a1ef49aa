"""Prefect 3 workloads, equivalent to Tiercel's (run with Prefect's own interpreter).

``python prefect_bench.py WORKLOAD`` prints one JSON line: a list of figures. Prefect runs
in its default local mode (an ephemeral API on SQLite under PREFECT_HOME).
"""

import json
import sys
import time

N = 1000


def sequential() -> list[dict[str, object]]:
    from prefect import flow, task

    @task
    def noop(i: int) -> int:
        return i

    inner: dict[str, float] = {}

    @flow
    def many() -> None:
        started = time.perf_counter()
        for i in range(N):
            noop(i)
        inner["seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    many()
    total = time.perf_counter() - started
    return [
        {"name": "sequential.inside", "value": N / inner["seconds"], "unit": "tasks/s"},
        {"name": "sequential.end_to_end", "value": N / total, "unit": "tasks/s"},
    ]


def concurrent() -> list[dict[str, object]]:
    from prefect import flow, task

    @task
    def noop(i: int) -> int:
        return i

    @flow
    def fan() -> None:
        futures = [noop.submit(i) for i in range(N)]
        for future in futures:
            future.result()

    started = time.perf_counter()
    fan()
    return [{"name": "concurrent", "value": N / (time.perf_counter() - started), "unit": "tasks/s"}]


def retries() -> list[dict[str, object]]:
    from prefect import flow, task

    calls = {"n": 0}

    @task(retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] % 3 != 0:
            raise RuntimeError("not yet")
        return "ok"

    @flow
    def retrying() -> str:
        return flaky()

    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        retrying()
    per_run = (time.perf_counter() - started) / runs
    return [{"name": "retries", "value": per_run * 1000, "unit": "ms/execution"}]


def one_task() -> list[dict[str, object]]:
    from prefect import flow, task

    @task
    def noop() -> int:
        return 1

    @flow
    def one() -> int:
        return noop()

    one()
    return []


if __name__ == "__main__":
    workload = {
        "sequential": sequential,
        "concurrent": concurrent,
        "retries": retries,
        "one": one_task,
    }
    print(json.dumps(workload[sys.argv[1]]()))
