"""Scale-out on PostgreSQL: executors, workers, API nodes and a scheduler in any number of
processes on any number of machines, coordinated by one PostgreSQL database.

- Execution ownership: a lease row per execution (owner, expiry, fencing token); executors
  claim executions no one owns and renew their leases; a new owner rebuilds an execution
  from its event log (see :mod:`runtime.cluster._leases`).
- Work: attempts of runnable tasks go to ``task_queue``; workers claim them in batches
  with ``FOR UPDATE SKIP LOCKED`` under a heartbeat-renewed lease; an outcome counts only
  while the claim is still the worker's (:mod:`runtime.cluster._queue`,
  :mod:`runtime.cluster._worker`).
- Commands (kill, pause, resume, restart...) to executions running elsewhere are rows the
  owner answers (:mod:`runtime.cluster._commands`).
- Flow concurrency limits: a slot row per running execution and a queue of QUEUED ones
  per flow, changed one transaction at a time per flow (:mod:`runtime.cluster._concurrency`).
- LISTEN/NOTIFY only wakes pollers early; correctness comes from polling.
"""

from runtime.cluster._commands import Commands, NoAnswerError
from runtime.cluster._concurrency import ClusterConcurrency
from runtime.cluster._db import ClusterError, open_pool
from runtime.cluster._executor import ClusterPlacement, Executor
from runtime.cluster._leases import Leases, Singleton
from runtime.cluster._queue import QueueAttemptRunner, sweep_expired
from runtime.cluster._worker import Worker, node_id

__all__ = (
    "ClusterConcurrency",
    "ClusterError",
    "ClusterPlacement",
    "Commands",
    "Executor",
    "Leases",
    "NoAnswerError",
    "QueueAttemptRunner",
    "Singleton",
    "Worker",
    "node_id",
    "open_pool",
    "sweep_expired",
)
