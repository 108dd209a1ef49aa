"""Network partitions for real: a worker, then an executor, in its own network namespace is
cut off from PostgreSQL in the middle of its work (the link goes down: its connections
hang), the rest of the cluster carries on without it, and when the link comes back what it
still had to say is refused and it goes on working.

The executor is also cut off at the moment it sends a given statement (the forwarder holds
it, as the network would, until the link is back): an attempt on its way to the queue, a
write of events holding its lease rows locked.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.netns import Forwarder, Netns, NetnsUnavailableError, running_server_in
from tests.server_process import ServerProcess, running_server
from tests.test_cluster_processes import pid_of, rows, wait_until

pytestmark = pytest.mark.slow

TOKEN = "cluster-netns-token-long-enough"
LEASE = 2.0
"""TIERCEL_LEASE_SECONDS of every node: how long a cut-off node's work waits for others."""
ENV = {"TIERCEL_API_TOKEN": TOKEN, "TIERCEL_LEASE_SECONDS": str(LEASE)}
ENDED = ("SUCCESS", "FAILED", "KILLED", "WARNING")

# Each attempt appends a line as it starts and another as it ends: its task run, the
# attempts before it, and the network namespace of the worker that ran it.
STEP = """\
- id: step
  type: io.kestra.plugin.scripts.shell.Commands
  retry: {type: constant, interval: PT0.2S, maxAttempt: 3}
  commands:
    - echo "{{ taskrun.id }} {{ taskrun.attemptsCount }} $(readlink /proc/self/ns/net)" >> STARTED
    - sleep SECONDS
    - echo "{{ taskrun.id }} {{ taskrun.attemptsCount }} $(readlink /proc/self/ns/net)" >> SIDE_EFFECTS
"""


def step(seconds: float, indent: int) -> str:
    """The step, sleeping ``seconds``, indented by ``indent`` spaces."""
    return textwrap.indent(STEP.replace("SECONDS", str(seconds)), " " * indent)


def loop(flow_id: str, values: str, limit: int, seconds: float) -> str:
    """A flow running the step for each of ``values``, ``limit`` at a time (0: all)."""
    head = f"""\
id: {flow_id}
namespace: netns
tasks:
  - id: each
    type: ForEach
    values: {values}
    concurrencyLimit: {limit}
    tasks:
"""
    return head + step(seconds, 6)


SLOW = "id: slow\nnamespace: netns\ntasks:\n" + step(2, 2)
MANY = loop("many", "[1, 2, 3, 4]", 0, 0.2)
WORK = loop("work", "[1, 2, 3]", 1, 0.8)


@pytest.fixture
def pg_url(postgres_url: str) -> str:
    """A store in a schema of its own (dropped after the test)."""
    return postgres_url


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A network namespace with a veth link to this one (deleted afterwards)."""
    made = Netns()
    try:
        made.open()
    except NetnsUnavailableError as exc:
        pytest.skip(f"cannot make a network namespace here: {exc}")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def forwarder(netns: Netns, pg_url: str) -> Iterator[Forwarder]:
    """PostgreSQL, on the root end of the namespace's link."""
    where = urlsplit(pg_url)
    target = (where.hostname or "127.0.0.1", where.port or 5432)
    with Forwarder(netns.outer_address, target) as running:
        yield running


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    """The flows' folder; their attempts write to ``tmp_path`` (see :func:`side_effects`)."""
    folder = tmp_path / "flows"
    folder.mkdir()
    for name, source in (("slow", SLOW), ("many", MANY), ("work", WORK)):
        source = source.replace("SIDE_EFFECTS", str(tmp_path / "side-effects.txt"))
        (folder / f"{name}.yaml").write_text(
            source.replace("STARTED", str(tmp_path / "started.txt"))
        )
    return folder


def side_effects(tmp_path: Path, name: str = "side-effects") -> list[tuple[str, int, str]]:
    """(task run id, attempts before, network namespace) of every attempt that ran to its
    end (or that started, for ``name`` "started")."""
    path = tmp_path / f"{name}.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(t, int(n), ns) for t, n, ns in (line.split() for line in lines)]


def start(client: httpx.Client, flow: str) -> str:
    """Start an execution of ``flow``; its id."""
    created = client.post(f"/api/v1/executions/netns/{flow}", json={})
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def wait_ended(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """The executions ``ids`` once they have all ended."""

    def ended() -> dict[str, dict[str, Any]] | None:
        found = {i: client.get(f"/api/v1/executions/{i}").json() for i in ids}
        return found if all(e["state"]["current"] in ENDED for e in found.values()) else None

    finished: dict[str, dict[str, Any]] = wait_until(ended, timeout, "the executions to end")
    return finished


def task_runs(execution: dict[str, Any], task_id: str = "step") -> list[dict[str, Any]]:
    """The task runs of ``task_id`` in ``execution``."""
    return [t for t in execution["taskRunList"] if t["taskId"] == task_id]


def attempt_states(task_run: dict[str, Any]) -> list[str]:
    """The state of each attempt of ``task_run``."""
    return [a["state"]["current"] for a in task_run.get("attempts") or []]


def here() -> str:
    """This process's network namespace, as ``readlink /proc/self/ns/net`` names it."""
    return os.readlink("/proc/self/ns/net")


def owners(pg_url: str) -> list[int]:
    """The pids of the executors owning executions, one per execution owned."""
    found = rows(pg_url, "SELECT owner FROM execution_leases WHERE owner IS NOT NULL")
    return sorted(pid_of(owner) for (owner,) in found)


def lease_losses(server: ServerProcess) -> list[str]:
    """The lines where an executor says it gave an execution up."""
    return [line for line in server.lines if "lost the lease of an execution" in line]


def assert_each_attempt_ran_once(tmp_path: Path, finished: dict[str, dict[str, Any]]) -> None:
    """No attempt that finished ran again, and nothing ran that the executions do not know."""
    ran = side_effects(tmp_path)
    keys = [(t, n) for t, n, _ in ran]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    steps = {t["id"]: t for e in finished.values() for t in task_runs(e)}
    assert len(steps) == 3 * len(finished)
    assert {t for t, _ in keys} <= set(steps), "an attempt of a task run no execution has"
    written = Counter(t for t, _ in keys)
    for step in steps.values():
        assert step["state"]["current"] == "SUCCESS"
        assert 1 <= written[step["id"]] <= len(step["attempts"])


def running_attempts(pg_url: str) -> int:
    """How many executions have an attempt claimed by a worker."""
    return len(rows(pg_url, "SELECT DISTINCT execution_id FROM task_queue WHERE state = 1"))


def test_a_worker_cut_off_mid_attempt_is_replaced_and_its_late_result_refused(
    tmp_path: Path, pg_url: str, netns: Netns, forwarder: Forwarder, flows: Path
) -> None:
    data = tmp_path / "data"
    store = ("--store", pg_url)
    with ExitStack() as stack:
        api = stack.enter_context(
            running_server(data, *store, "--role", "api", "--flows", str(flows), env=ENV)
        )
        executor = stack.enter_context(running_server(data, *store, "--role", "executor", env=ENV))
        # The only worker at first, so the first attempt is surely its own.
        cut_off = stack.enter_context(
            running_server_in(
                netns,
                data,
                *("--store", forwarder.url(pg_url)),
                *("--role", "worker", "--worker-concurrency", "2"),
                env=ENV,
            )
        )
        with api.client(token=TOKEN) as client:
            first = start(client, "slow")
            wait_until(lambda: side_effects(tmp_path, "started"), 30, "the attempt started")
            [(worker,)] = rows(pg_url, "SELECT worker FROM task_queue WHERE state = 1")
            assert pid_of(worker) == cut_off.process.pid
            netns.cut()
            # A real partition: connecting from the namespace hangs (it is not refused).
            probe = netns.try_connect(netns.outer_address, forwarder.port)
            assert "timed out" in probe, probe
            other = stack.enter_context(
                running_server(
                    data, *store, "--role", "worker", "--worker-concurrency", "2", env=ENV
                )
            )

            finished = wait_ended(client, [first], 30)[first]
            assert finished["state"]["current"] == "SUCCESS"
            [step] = task_runs(finished)
            assert attempt_states(step) == ["FAILED", "SUCCESS"]
            logged = client.get(f"/api/v1/logs/{first}").json()
            assert [(e["attemptNumber"], e["level"]) for e in logged] == [(1, "ERROR")]
            assert "stopped answering (its lease expired)" in logged[0]["message"]
            assert "attempts lost: their workers stopped heartbeating" in executor.log
            # The cut-off worker ran its attempt to the end, unheard; the retry ran here.
            wait_until(lambda: len(side_effects(tmp_path)) == 2, 10, "the cut-off attempt's end")
            assert sorted(side_effects(tmp_path)) == [
                (step["id"], 0, netns.inode()),
                (step["id"], 1, here()),
            ]
            assert "late result rejected" not in cut_off.log

            netns.heal()
            wait_until(lambda: "late result rejected" in cut_off.log, 15, "the late result refused")
            [rejected] = [line for line in cut_off.lines if "late result rejected" in line]
            assert step["id"] in rejected
            assert "attempt=1 " in rejected
            again = client.get(f"/api/v1/executions/{first}").json()
            assert again["state"] == finished["state"]
            assert again["taskRunList"] == finished["taskRunList"]

            # It goes on: with the other worker stopped, it runs everything that comes.
            other.stop()
            before = len(side_effects(tmp_path))
            more = [start(client, "many") for _ in range(2)]
            ended = wait_ended(client, more, 30)
            assert {e["state"]["current"] for e in ended.values()} == {"SUCCESS"}
            ran = side_effects(tmp_path)[before:]
            assert len(ran) == 8
            assert {ns for _, _, ns in ran} == {netns.inode()}
            assert cut_off.process.poll() is None


@pytest.mark.parametrize(
    "in_flight",
    [
        # the cut comes while it waits for its attempts' outcomes: nothing in flight
        pytest.param(None, id="waiting-for-workers"),
        # the cut comes as it sends the next step's attempt to the queue (its task run's
        # events are stored: the other executor sees the attempt and runs it)
        pytest.param(b"INSERT INTO task_queue", id="while-enqueuing"),
        # the cut comes in the middle of a write of events, the lease rows locked
        pytest.param(b"COPY events", id="while-writing-events"),
    ],
)
def test_an_executor_cut_off_loses_its_executions_and_is_fenced_out(
    tmp_path: Path,
    pg_url: str,
    netns: Netns,
    forwarder: Forwarder,
    flows: Path,
    in_flight: bytes | None,
) -> None:
    data = tmp_path / "data"
    store = ("--store", pg_url)
    with ExitStack() as stack:
        api = stack.enter_context(
            running_server(data, *store, "--role", "api", "--flows", str(flows), env=ENV)
        )
        for _ in range(2):
            stack.enter_context(
                running_server(
                    data, *store, "--role", "worker", "--worker-concurrency", "4", env=ENV
                )
            )
        # The only executor at first, so it owns every execution.
        cut_off = stack.enter_context(
            running_server_in(
                netns, data, "--store", forwarder.url(pg_url), "--role", "executor", env=ENV
            )
        )
        stack.callback(forwarder.thaw)
        with api.client(token=TOKEN) as client:
            ids = [start(client, "work") for _ in range(3)]
            wait_until(lambda: owners(pg_url) == [cut_off.process.pid] * 3, 30, "them owned")
            # Another executor: it takes nothing while the first renews its leases.
            other = stack.enter_context(running_server(data, *store, "--role", "executor", env=ENV))
            wait_until(
                lambda: (
                    owners(pg_url) == [cut_off.process.pid] * 3 and running_attempts(pg_url) == 3
                ),
                30,
                "the executions running",
            )
            if in_flight is not None:
                forwarder.freeze_at(in_flight)
                assert forwarder.frozen.wait(10), f"the executor never sent {in_flight!r}"
            netns.cut()
            cut_at = time.monotonic()
            wait_until(
                lambda: owners(pg_url) == [other.process.pid] * 3,
                4 * LEASE,
                "the executions taken over",
            )
            # when the leases expire, not when the link comes back
            assert time.monotonic() - cut_at < LEASE + 2
            finished = wait_ended(client, ids, 30)
            assert {e["state"]["current"] for e in finished.values()} == {"SUCCESS"}
            assert other.log.count("execution taken over") == 3
            assert "lost the lease" not in cut_off.log

            netns.heal()
            forwarder.thaw()
            wait_until(
                lambda: all(any(i in line for line in lease_losses(cut_off)) for i in ids),
                15,
                "the cut-off executor to give its executions up",
            )
            time.sleep(1.0)  # what it still had to send has arrived by now
            for i in ids:
                again = client.get(f"/api/v1/executions/{i}").json()
                assert again["state"] == finished[i]["state"]
                assert again["taskRunList"] == finished[i]["taskRunList"]
            left = rows(pg_url, "SELECT task_run_id, attempt, state, worker FROM task_queue")
            assert left == [], "attempts queued (and run) after their executions ended"
            assert_each_attempt_ran_once(tmp_path, finished)

            # It is an executor still: alone now, it runs what comes.
            other.stop()
            more = start(client, "many")
            ended = wait_ended(client, [more], 30)[more]
            assert ended["state"]["current"] == "SUCCESS"
            assert any("execution taken over" in line and more in line for line in cut_off.lines)
            assert cut_off.process.poll() is None
