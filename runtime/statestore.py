"""Key-value documents that outlive executions: the ``state`` and ``kv`` tasks use them."""

from __future__ import annotations

import copy
from typing import Any

from actors import Clock
from runtime.tasks._api import StateStore


class MemoryStateStore(StateStore):
    """A state store in memory, with expiry on the runtime's clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._values: dict[str, tuple[Any, float | None]] = {}

    async def get(self, key: str) -> Any | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and self._clock.now() >= expires:
            del self._values[key]
            return None
        return copy.deepcopy(value)

    async def put(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = None if ttl_seconds is None else self._clock.now() + ttl_seconds
        self._values[key] = (copy.deepcopy(value), expires)

    async def delete(self, key: str) -> bool:
        return self._values.pop(key, None) is not None
