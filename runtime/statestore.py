"""Key-value documents that outlive executions: the ``state`` and ``kv`` tasks use them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from actors import Clock
from runtime.tasks._api import StateStore

if TYPE_CHECKING:
    from runtime.store import Store


class StoreStateStore(StateStore):
    """A namespace's documents in the runtime's store, with expiry on the runtime's clock."""

    def __init__(self, store: Store, namespace: str, clock: Clock) -> None:
        self._store = store
        self._namespace = namespace
        self._clock = clock

    async def get(self, key: str) -> Any | None:
        return await self._store.kv_get(self._namespace, key, self._clock.utcnow())

    async def put(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        expires = None
        if ttl_seconds is not None:
            expires = self._clock.utcnow() + timedelta(seconds=ttl_seconds)
        await self._store.kv_put(self._namespace, key, value, expires)

    async def delete(self, key: str) -> bool:
        return await self._store.kv_delete(self._namespace, key)
