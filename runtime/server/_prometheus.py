"""Prometheus metrics in the text exposition format, served at ``/metrics``.

Labels are bounded: namespace, flow and state, never execution or task run ids.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from runtime._version import __version__
from runtime.engine import Execution, Runtime, State

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


class _Histogram:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for index, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                self.buckets[index] += 1


class ServerMetrics:
    """Counters fed by executions ending; gauges read from the runtime at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.started_at = time.monotonic()
        self.executions_ended: Counter[tuple[str, str, str]] = Counter()
        self.task_runs_ended: Counter[tuple[str, str, str]] = Counter()
        self.durations: defaultdict[tuple[str, str, str], _Histogram] = defaultdict(_Histogram)
        self.http_requests: Counter[tuple[str, str, str]] = Counter()
        runtime.on_execution_end(self.execution_ended)

    def execution_ended(self, execution: Execution) -> None:
        """Count an execution that ended, its task runs and its duration."""
        state = execution.state.current.value
        key = (execution.namespace, execution.flow_id, state)
        self.executions_ended[key] += 1
        if execution.state.duration is not None:
            self.durations[key].observe(execution.state.duration)
        for task_run in execution.task_run_list:
            self.task_runs_ended[
                (execution.namespace, execution.flow_id, task_run.state.current.value)
            ] += 1

    def request_done(self, method: str, route: str, status: int) -> None:
        """Count an HTTP request by method, route template and status."""
        self.http_requests[(method, route, str(status))] += 1

    def render(self) -> str:
        """Every metric, in Prometheus' text format."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("tiercel_info", "gauge", "Tiercel's version.")
        out.append(f"tiercel_info{_labels(version=__version__)} 1")
        family("tiercel_uptime_seconds", "gauge", "Seconds since the server started.")
        out.append(f"tiercel_uptime_seconds {time.monotonic() - self.started_at:.3f}")

        live = Counter[str]()
        task_runs = Counter[str]()
        backlog = 0
        for channel in list(self.runtime._channels.values()):
            execution = channel.execution
            if execution is None or channel.ended.is_set():
                continue
            live[execution.state.current.value] += 1
            for task_run in execution.task_run_list:
                if not task_run.state.current.terminal:
                    task_runs[task_run.state.current.value] += 1
            if channel.ref is not None and channel.ref.is_alive:
                backlog += channel.ref.backlog
        family("tiercel_executions", "gauge", "Executions not finished, by state.")
        out.extend(
            f"tiercel_executions{_labels(state=state.value)} {live[state.value]}"
            for state in State
            if not state.terminal
        )
        family("tiercel_task_runs", "gauge", "Task runs not finished, by state.")
        for state in State:
            if not state.terminal:
                value = task_runs[state.value]
                out.append(f"tiercel_task_runs{_labels(state=state.value)} {value}")
        family(
            "tiercel_executions_queued", "gauge", "Executions waiting for a flow concurrency slot."
        )
        queued = sum(len(queue) for queue in self.runtime._queued.values())
        out.append(f"tiercel_executions_queued {queued}")
        family(
            "tiercel_mailbox_backlog",
            "gauge",
            "Messages waiting in the mailboxes of execution actors.",
        )
        out.append(f"tiercel_mailbox_backlog {backlog}")

        family("tiercel_executions_ended_total", "counter", "Executions that ended, by state.")
        for (namespace, flow, ended), count in sorted(self.executions_ended.items()):
            labels = _labels(namespace=namespace, flow=flow, state=ended)
            out.append(f"tiercel_executions_ended_total{labels} {count}")
        family("tiercel_task_runs_ended_total", "counter", "Task runs of ended executions.")
        for (namespace, flow, ended), count in sorted(self.task_runs_ended.items()):
            labels = _labels(namespace=namespace, flow=flow, state=ended)
            out.append(f"tiercel_task_runs_ended_total{labels} {count}")
        name = "tiercel_execution_duration_seconds"
        family(name, "histogram", "Duration of ended executions.")
        for (namespace, flow, ended), histogram in sorted(self.durations.items()):
            base: dict[str, str] = {"namespace": namespace, "flow": flow, "state": ended}
            for bound, count in zip(DURATION_BUCKETS, histogram.buckets, strict=True):
                out.append(f"{name}_bucket{_labels(**base, le=repr(bound))} {count}")
            out.append(f"{name}_bucket{_labels(**base, le='+Inf')} {histogram.count}")
            out.append(f"{name}_sum{_labels(**base)} {histogram.total:.6f}")
            out.append(f"{name}_count{_labels(**base)} {histogram.count}")
        family("tiercel_http_requests_total", "counter", "HTTP requests, by route and status.")
        for (method, route, status), count in sorted(self.http_requests.items()):
            labels = _labels(method=method, route=route, status=status)
            out.append(f"tiercel_http_requests_total{labels} {count}")
        return "\n".join(out) + "\n"
