"""Kill Tiercel with SIGKILL at random moments, restart it, and check nothing was lost.

The worker (tests/crash/worker.py) runs a mix of flows on SQLite: sequential shell tasks,
Parallel sleeps, a ForEach, retries with delays, a Pause with a delay, output files. Every
shell task appends "<task run id> <attempt>" to a side-effect file, which tells whether a
task run that had ended ran again. The flows declare a retry policy: an attempt that was
running when the process died is marked FAILED and retried by it (without one it fails).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import IO

import anyio
import pytest

from runtime.engine import State, execution_json, fold
from runtime.storage import LocalStorage
from runtime.store import ExecutionQuery, SqliteStore
from tests.crash.worker import PLAN

ROOT = Path(__file__).resolve().parent.parent

FLOWS = {
    "seq": """
id: seq
namespace: crash
retry: {type: constant, interval: PT0.1S, maxAttempt: 10}
tasks:
  - id: steps
    type: ForEach
    values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]
    tasks:
      - id: step
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["echo '{{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}' >> SIDE", "sleep 0.1"]
""",
    "par": """
id: par
namespace: crash
retry: {type: constant, interval: PT0.1S, maxAttempt: 10}
tasks:
  - id: fan
    type: Parallel
    tasks:
      - {id: p1, type: Sleep, duration: PT0.6S}
      - {id: p2, type: Sleep, duration: PT0.8S}
      - id: p3
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["sleep 0.3", "echo '{{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}' >> SIDE"]
""",
    "loop": """
id: loop
namespace: crash
retry: {type: constant, interval: PT0.1S, maxAttempt: 10}
tasks:
  - id: each
    type: ForEach
    values: ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    concurrencyLimit: 3
    tasks:
      - id: item
        type: io.kestra.plugin.scripts.shell.Commands
        commands: ["sleep 0.2", "echo '{{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}' >> SIDE"]
""",
    "retry": """
id: retry
namespace: crash
tasks:
  - id: flaky
    type: Log
    message: "{{ taskrun.attemptsCount >= 2 ? 'ok' : not_yet }}"
    retry: {type: constant, interval: PT0.4S, maxAttempt: 5}
  - {id: after, type: Return, format: done}
""",
    "pause": """
id: pause
namespace: crash
retry: {type: constant, interval: PT0.1S, maxAttempt: 10}
tasks:
  - {id: wait, type: Pause, delay: PT2S}
  - id: after
    type: io.kestra.plugin.scripts.shell.Commands
    commands: ["echo '{{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}' >> SIDE"]
""",
    "files": """
id: files
namespace: crash
retry: {type: constant, interval: PT0.1S, maxAttempt: 10}
tasks:
  - id: write
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["out.txt"]
    commands: ["sleep 0.2", "echo 'content of {{ execution.id }}' > out.txt", "echo '{{ taskrun.id }} {{ taskrun.attemptsCount + 1 }}' >> SIDE"]
  - {id: check, type: Return, format: "{{ read(outputs.write.outputFiles['out.txt']) | trim }}"}
""",
}


def start_worker(data: Path, flows: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.worker", str(data), str(flows)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    flows = tmp_path / "flows"
    flows.mkdir()
    side = tmp_path / "side-effects.txt"
    side.touch()
    for flow_id, text in FLOWS.items():
        (flows / f"{flow_id}.yaml").write_text(text.replace("SIDE", str(side)))
    rng = random.Random(int(os.environ.get("TIERCEL_CRASH_SEED", "20261124")))
    kills = 0
    log = (tmp_path / "worker.log").open("ab")
    for _ in range(6):
        worker = start_worker(data, flows, log)
        time.sleep(rng.uniform(0.5, 1.5))
        if worker.poll() is not None:
            break  # everything finished before this kill
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
    worker = start_worker(data, flows, log)
    worker.wait(timeout=180)
    log.close()
    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
    assert kills >= 3
    anyio.run(verify, data, side)


async def verify(data: Path, side: Path) -> None:
    lines: dict[str, list[int]] = defaultdict(list)
    for line in (await anyio.Path(side).read_text()).splitlines():
        task_run_id, attempt = line.split()
        lines[task_run_id].append(int(attempt))
    storage = LocalStorage(data / "storage")
    async with SqliteStore(data / "tiercel.db") as store:
        executions = (await store.search(ExecutionQuery(namespace="crash", size=1000))).items
        assert sorted(e.flow_id for e in executions) == sorted(
            flow_id for flow_id, count in PLAN.items() for _ in range(count)
        )
        lost = 0
        for execution in executions:
            events = await store.events(execution.id)
            lost += sum("process running it was lost" in getattr(e, "message", "") for e in events)
            assert execution_json(fold(events)) == execution_json(execution), execution.id
            assert execution.state.current is State.SUCCESS, (execution.flow_id, execution.id)
            for task_run in execution.task_run_list:
                assert task_run.state.current in (State.SUCCESS, State.WARNING), task_run
                attempts = len(task_run.attempts or ())
                seen = lines.get(task_run.id, [])
                # a task run runs again only when it had not finished: never after its
                # successful attempt, and that attempt's side effect happened exactly once
                assert all(n <= attempts for n in seen), (task_run.task_id, seen, attempts)
                if seen:
                    assert seen.count(attempts) == 1, (task_run.task_id, seen, attempts)
            if execution.flow_id == "files":
                write, check = execution.task_run_list
                uri = (write.outputs or {})["outputFiles"]["out.txt"]
                content = storage.resolve(uri).read_text().strip()
                assert content == f"content of {execution.id}"
                assert check.outputs == {"value": content}
        assert lost > 0, "no kill landed while a task ran: the test proved nothing"
