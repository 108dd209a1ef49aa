"""Nodes sharing a store follow the flows other nodes add, change and delete there."""

from __future__ import annotations

from pathlib import Path

from runtime.engine import Runtime
from runtime.parsing import parse_flow
from runtime.server._flow_sources import StoredFlows, load_stored_flows
from runtime.store import SqliteStore, StoredFlow

FLOW = """\
id: nightly
namespace: company.team
triggers:
  - {id: every-night, type: io.kestra.plugin.core.trigger.Schedule, cron: "0 2 * * *"}
tasks:
  - {id: hello, type: io.kestra.plugin.core.log.Log, message: MESSAGE}
"""


async def test_a_node_follows_flows_added_changed_and_deleted_by_another(tmp_path: Path) -> None:
    changes: list[int] = []
    async with (
        Runtime(data_dir=tmp_path / "api", store=SqliteStore(tmp_path / "shared.db")) as api,
        Runtime(data_dir=tmp_path / "sched", store=SqliteStore(tmp_path / "shared.db")) as node,
    ):
        stored = StoredFlows(node, lambda: changes.append(1))
        assert not await stored.sync()

        await api.register_flow(parse_flow(FLOW.replace("MESSAGE", "one")))
        assert await stored.sync()
        first = node.flows.get("company.team", "nightly")
        assert first is not None
        assert first.revision == 1
        assert first.triggers[0].id == "every-night"
        assert not await stored.sync()  # nothing new: no change reported

        await api.register_flow(parse_flow(FLOW.replace("MESSAGE", "two")))
        assert await stored.sync()
        second = node.flows.get("company.team", "nightly")
        assert second is not None
        assert second.revision == 2
        assert "two" in (second.source or "")
        # the node itself saving a change goes on from the store's numbering
        third = await node.register_flow(parse_flow(FLOW.replace("MESSAGE", "three")))
        assert third.revision == 3

        assert await api.delete_flow("company.team", "nightly")
        assert await stored.sync()
        assert node.flows.get("company.team", "nightly") is None
        assert [f.id for f in await node.store.latest_flows()] == []  # still deleted
    assert changes == [1, 1, 1]


class _DeletedRightAfterReading(SqliteStore):
    """A store where another node deletes every flow just after this node listed them."""

    async def latest_flows(self) -> list[StoredFlow]:
        listed = await super().latest_flows()
        for flow in listed:
            await self.delete_flow(flow.namespace, flow.id)
        return listed


async def test_following_the_store_never_revives_a_flow_deleted_meanwhile(tmp_path: Path) -> None:
    """Loading and following flows only read the store: a node that registered what it had
    just listed would store it again, reviving a flow another node deleted meanwhile."""
    async with Runtime(data_dir=tmp_path, store=SqliteStore(tmp_path / "s.db")) as runtime:
        await runtime.register_flow(parse_flow(FLOW.replace("MESSAGE", "one")))
    store = _DeletedRightAfterReading(tmp_path / "s.db")
    async with Runtime(data_dir=tmp_path, store=store) as runtime:
        assert await load_stored_flows(runtime) == 1
        assert await SqliteStore.latest_flows(store) == []
        await runtime.store.save_flow("company.team", "nightly", 2, FLOW.replace("MESSAGE", "2"))
        assert await StoredFlows(runtime, lambda: None).sync()
        assert await SqliteStore.latest_flows(store) == []
        loaded = runtime.flows.get("company.team", "nightly")
        assert loaded is not None
        assert loaded.revision == 2


async def test_a_stored_flow_that_does_not_parse_is_reported_once(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    async with Runtime(data_dir=tmp_path, store=SqliteStore(tmp_path / "s.db")) as runtime:
        await runtime.store.save_flow("company.team", "broken", 1, "id: broken\ntasks: 3\n")
        stored = StoredFlows(runtime, lambda: None)
        with capture_logs() as logs:
            assert not await stored.sync()
            assert not await stored.sync()  # the next polls say nothing more
        assert runtime.flows.get("company.team", "broken") is None
    assert [e["event"] for e in logs] == ["a stored flow no longer parses; it is not loaded"]
