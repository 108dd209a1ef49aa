"""Where the runtime finds flows: added ones, and the files of flow folders."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from runtime.errors import FlowValidationError, Problem
from runtime.model import Flow
from runtime.model._common import enc_hook
from runtime.parsing import load_flow

FLOW_SUFFIXES = (".yaml", ".yml")


def _content(flow: Flow) -> bytes:
    """The flow's document without its revision, to tell real changes from re-adds."""
    return msgspec.json.encode(
        msgspec.structs.replace(flow, revision=None, source=None), enc_hook=enc_hook
    )


def flow_source(flow: Flow) -> str:
    """The text of a flow: what it was parsed from, else its JSON (valid YAML too)."""
    if flow.source is not None:
        return flow.source
    return msgspec.json.encode(
        msgspec.structs.replace(flow, source=None), enc_hook=enc_hook
    ).decode()


class FlowRepository:
    """Flows by namespace and id, with every revision added.

    Adding a flow whose content changed gives it the next revision number (unless the
    document sets one); adding the same content again changes nothing.
    """

    def __init__(self) -> None:
        self._revisions: dict[tuple[str, str], list[Flow]] = {}
        self._search: list[Path] = []

    def search(self, folder: Path) -> None:
        """Look in ``folder`` (and below) for flows that are asked for and not known yet.

        Files are read only on a miss, and parsed only when their ``id`` matches: a
        ``tiercel run`` in a big folder does not pay for flows it never starts.
        """
        if folder not in self._search:
            self._search.append(folder)

    def add(self, flow: Flow) -> Flow:
        """Add ``flow``; return what is stored.

        A flow without a revision becomes the next revision if its content differs from the
        latest, else the latest is returned. A flow with a revision (one read back from the
        store) takes its place among the others; a revision already known is kept.
        """
        key = (flow.namespace, flow.id)
        revisions = self._revisions.setdefault(key, [])
        if flow.revision is None:
            if revisions and (revisions[-1] is flow or _content(revisions[-1]) == _content(flow)):
                return revisions[-1]
            flow.revision = (revisions[-1].revision or 0) + 1 if revisions else 1
            revisions.append(flow)
            return flow
        for index, known in enumerate(revisions):
            if known.revision == flow.revision:
                return known
            if (known.revision or 0) > flow.revision:
                revisions.insert(index, flow)
                return flow
        revisions.append(flow)
        return flow

    def remove(self, namespace: str, flow_id: str) -> bool:
        """Forget every revision of a flow; True if there was one."""
        return bool(self._revisions.pop((namespace, flow_id), None))

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> Flow | None:
        """The latest revision (or ``revision``) of ``namespace.flow_id``, or None."""
        revisions = self._revisions.get((namespace, flow_id))
        if not revisions:
            found = self._find(namespace, flow_id)
            if found is None:
                return None
            revisions = self._revisions[(namespace, flow_id)]
        if revision is None:
            return revisions[-1]
        for flow in revisions:
            if flow.revision == revision:
                return flow
        return None

    def _find(self, namespace: str, flow_id: str) -> Flow | None:
        pattern = re.compile(rf"^id:\s*['\"]?{re.escape(flow_id)}['\"]?\s*(#.*)?$", re.MULTILINE)
        for folder in self._search:
            for path in sorted(folder.rglob("*")):
                if path.suffix not in FLOW_SUFFIXES or not path.is_file():
                    continue
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                if not pattern.search(text):
                    continue
                try:
                    flow = load_flow(path)
                except FlowValidationError:
                    continue
                if (flow.namespace, flow.id) == (namespace, flow_id):
                    return self.add(flow)
        return None

    def all(self) -> list[Flow]:
        """The latest revision of every flow."""
        return [revisions[-1] for revisions in self._revisions.values() if revisions]

    def load_dir(self, folder: Path) -> list[Problem]:
        """Add every valid flow file under ``folder``; return the problems of the others."""
        problems: list[Problem] = []
        for path in sorted(folder.rglob("*")):
            if path.suffix not in FLOW_SUFFIXES or not path.is_file():
                continue
            try:
                self.add(load_flow(path))
            except FlowValidationError as exc:
                problems.extend(exc.problems)
        return problems
