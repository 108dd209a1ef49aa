"""Dagster workloads, equivalent to Tiercel's (run with Dagster's own interpreter).

``python dagster_bench.py WORKLOAD STORE`` prints one JSON line: a list of figures. STORE
is ``memory`` (an ephemeral instance) or ``sqlite`` (a local instance under DAGSTER_HOME).
"""

import json
import os
import sys
import time

N = 1000


def instance(store: str):  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    if store == "memory":
        return DagsterInstance.ephemeral()
    return DagsterInstance.local_temp(tempdir=os.environ["DAGSTER_HOME"])


def sequential(store: str) -> list[dict[str, object]]:
    from dagster import In, Nothing, job, op

    @op
    def first() -> None:
        return None

    @op(ins={"after": In(Nothing)})
    def step() -> None:
        return None

    @job
    def chain() -> None:
        previous = first()
        for _ in range(N - 1):
            previous = step(previous)

    started = time.perf_counter()
    result = chain.execute_in_process(instance=instance(store))
    assert result.success
    return [{"name": "sequential", "value": N / (time.perf_counter() - started), "unit": "ops/s"}]


def concurrent(store: str) -> list[dict[str, object]]:
    from dagster import job, op

    @op
    def leaf() -> None:
        return None

    @job
    def fan() -> None:
        for _ in range(N):
            leaf()

    started = time.perf_counter()
    result = fan.execute_in_process(instance=instance(store))
    assert result.success
    return [{"name": "concurrent", "value": N / (time.perf_counter() - started), "unit": "ops/s"}]


def retries(store: str) -> list[dict[str, object]]:
    from dagster import RetryPolicy, job, op

    calls = {"n": 0}

    @op(retry_policy=RetryPolicy(max_retries=2, delay=0))
    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] % 3 != 0:
            raise RuntimeError("not yet")

    @job
    def retrying() -> None:
        flaky()

    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        assert retrying.execute_in_process(instance=instance(store)).success
    per_run = (time.perf_counter() - started) / runs
    return [{"name": "retries", "value": per_run * 1000, "unit": "ms/execution"}]


def one_task(store: str) -> list[dict[str, object]]:
    from dagster import job, op

    @op
    def noop() -> int:
        return 1

    @job
    def one() -> None:
        noop()

    assert one.execute_in_process(instance=instance(store)).success
    return []


if __name__ == "__main__":
    workloads = {
        "sequential": sequential,
        "concurrent": concurrent,
        "retries": retries,
        "one": one_task,
    }
    print(json.dumps(workloads[sys.argv[1]](sys.argv[2])))
