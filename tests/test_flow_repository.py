"""FlowRepository: revisions and the lazy search of a folder for subflows."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.flows import FlowRepository
from runtime.parsing import parse_flow

PARENT = """\
id: parent
namespace: company.team
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: company.team
    flowId: child
"""

CHILD = """\
id: child  # the callee
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
"""


def test_revisions_are_deduplicated_by_content() -> None:
    repo = FlowRepository()
    first = repo.add(parse_flow(CHILD))
    again = repo.add(parse_flow(CHILD))
    changed = repo.add(parse_flow(CHILD.replace("message: hi", "message: bye")))
    assert again.revision == first.revision
    assert first.revision is not None
    assert changed.revision == first.revision + 1
    assert repo.get("company.team", "child", first.revision) is not None
    latest = repo.get("company.team", "child")
    assert latest is not None
    assert latest.revision == changed.revision


def test_search_finds_a_flow_on_first_miss(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "child.yml").write_text(CHILD)
    repo = FlowRepository()
    repo.search(tmp_path)
    assert repo.all() == []  # nothing read until asked for
    found = repo.get("company.team", "child")
    assert found is not None
    assert found.id == "child"
    assert [flow.id for flow in repo.all()] == ["child"]


def test_search_does_not_parse_files_of_other_flows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "parent.yaml").write_text(PARENT)
    (tmp_path / "child.yaml").write_text(CHILD)
    (tmp_path / "broken.yaml").write_text("id: [unclosed\n")
    (tmp_path / "notes.txt").write_text("id: child\nnamespace: company.team\n")
    parsed: list[str] = []
    import runtime.flows as flows_module

    original = flows_module.load_flow  # type: ignore[attr-defined]

    def spy(path: Path) -> object:
        parsed.append(path.name)
        return original(path)

    monkeypatch.setattr(flows_module, "load_flow", spy)
    repo = FlowRepository()
    repo.search(tmp_path)
    assert repo.get("company.team", "child") is not None
    assert parsed == ["child.yaml"]


def test_search_skips_same_id_in_another_namespace(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CHILD.replace("company.team", "other"))
    repo = FlowRepository()
    repo.search(tmp_path)
    assert repo.get("company.team", "child") is None
    (tmp_path / "b.yaml").write_text(CHILD)
    assert repo.get("company.team", "child") is not None


async def test_revisions_continue_from_the_store_across_runtimes(tmp_path: Path) -> None:
    """Regression: each new process numbered its flows from 1 again, so a changed flow got
    a revision the store already held with other text, and recovery ran the old text."""
    from runtime.engine import Runtime

    changed = CHILD.replace("message: hi", "message: bye")
    async with Runtime(data_dir=tmp_path) as runtime:
        first = await runtime.run(CHILD)
    async with Runtime(data_dir=tmp_path) as runtime:
        second = await runtime.run(changed)
        again = await runtime.run(changed)
    async with Runtime(data_dir=tmp_path) as runtime:
        third = await runtime.run(changed)
        stored = await runtime.store.flow_revisions("company.team", "child")
    assert [first.flow_revision, second.flow_revision, again.flow_revision] == [1, 2, 2]
    assert third.flow_revision == 2
    assert [(r.revision, "bye" in r.source) for r in stored] == [(1, False), (2, True)]


async def test_a_deleted_flow_is_gone_but_its_executions_can_restart(tmp_path: Path) -> None:
    from runtime.engine import Runtime, State

    failing = CHILD.replace(
        "type: io.kestra.plugin.core.log.Log\n    message: hi",
        "type: io.kestra.plugin.core.execution.Fail",
    )
    async with Runtime(data_dir=tmp_path) as runtime:
        execution = await runtime.run(failing)
        assert execution.state.current is State.FAILED
        assert await runtime.delete_flow("company.team", "child")
        assert runtime.flows.get("company.team", "child") is None
        assert [f.id for f in await runtime.store.latest_flows()] == []
    async with Runtime(data_dir=tmp_path) as runtime:
        restarted = await runtime.restart(execution.id)
        assert restarted.state.current is State.RESTARTED


async def test_processes_sharing_a_store_never_give_one_revision_number_two_texts(
    tmp_path: Path,
) -> None:
    """Regression: a process numbered a changed flow from the revision it knew, so when
    another process (an API node of a cluster) had stored a newer revision meanwhile, the
    number went to two texts and the store kept only the other one."""
    from runtime.engine import Runtime
    from runtime.store import SqliteStore

    texts = [CHILD.replace("message: hi", f"message: text {n}") for n in range(3)]
    async with (
        Runtime(data_dir=tmp_path / "a", store=SqliteStore(tmp_path / "shared.db")) as one,
        Runtime(data_dir=tmp_path / "b", store=SqliteStore(tmp_path / "shared.db")) as other,
    ):
        assert (await one.register_flow(parse_flow(texts[0]))).revision == 1
        assert (await other.register_flow(parse_flow(texts[0]))).revision == 1
        assert (await one.register_flow(parse_flow(texts[1]))).revision == 2
        kept = await other.register_flow(parse_flow(texts[2]))  # it still knows revision 1
        stored = await other.store.flow_revisions("company.team", "child")
    assert kept.revision == 3
    assert [(r.revision, r.source) for r in stored] == [(1, texts[0]), (2, texts[1]), (3, texts[2])]


async def test_a_deleted_flow_registered_again_with_the_same_text_is_listed_again(
    tmp_path: Path,
) -> None:
    """Regression: the text matched the latest stored revision, so nothing was saved and
    the store still listed the flow as deleted (gone after a restart, and from other nodes)."""
    from runtime.engine import Runtime

    async with Runtime(data_dir=tmp_path) as runtime:
        await runtime.register_flow(parse_flow(CHILD))
        assert await runtime.delete_flow("company.team", "child")
        again = await runtime.register_flow(parse_flow(CHILD))
        listed = await runtime.store.latest_flows()
    assert again.revision == 1
    assert [(f.id, f.revision) for f in listed] == [("child", 1)]
