"""Outputs as the UI shows them: a tree per task run, files previewed (text, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREVIEW_BYTES = 64 * 1024
"""Bytes of a file read for its preview (the download has it all)."""
PREVIEW_CSV_ROWS = 20
MAX_TREE_ITEMS = 500
"""Entries of one map or list shown (the rest is counted)."""


@dataclass
class OutputNode:
    """One value in an outputs tree: a leaf (text, or a file URI) or a branch."""

    key: str
    kind: str
    """``map``, ``list``, ``file``, ``text``, ``number``, ``bool`` or ``null``."""
    text: str = ""
    children: list[OutputNode] = field(default_factory=list)
    more: int = 0


def output_tree(key: str, value: Any) -> OutputNode:
    """``value`` as a tree the template can walk (files recognised by their URI)."""
    if isinstance(value, dict):
        items = list(value.items())
        children = [output_tree(str(k), v) for k, v in items[:MAX_TREE_ITEMS]]
        return OutputNode(key, "map", children=children, more=max(0, len(items) - MAX_TREE_ITEMS))
    if isinstance(value, list):
        children = [output_tree(str(i), v) for i, v in enumerate(value[:MAX_TREE_ITEMS])]
        return OutputNode(key, "list", children=children, more=max(0, len(value) - MAX_TREE_ITEMS))
    if isinstance(value, str) and value.startswith("kestra://"):
        return OutputNode(key, "file", value)
    if value is None:
        return OutputNode(key, "null", "null")
    if isinstance(value, bool):
        return OutputNode(key, "bool", "true" if value else "false")
    if isinstance(value, int | float):
        return OutputNode(key, "number", str(value))
    return OutputNode(key, "text", str(value))


@dataclass(frozen=True)
class Preview:
    """The first part of a file, ready to show."""

    name: str
    size: int
    kind: str
    """``json``, ``csv``, ``text`` or ``binary``."""
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False


def preview_file(path: Path) -> Preview:
    """A preview of ``path``: pretty JSON, a table of a CSV's first rows, or text."""
    size = path.stat().st_size
    with path.open("rb") as reader:
        head = reader.read(PREVIEW_BYTES)
    truncated = size > len(head)
    if b"\0" in head[:8192]:
        return Preview(path.name, size, "binary", truncated=truncated)
    text = head.decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    looks_like_json = suffix in (".json", ".ion") or text.lstrip()[:1] in ("{", "[")
    if looks_like_json and not truncated:
        try:
            return Preview(path.name, size, "json", json.dumps(json.loads(text), indent=2))
        except ValueError:
            pass  # not JSON after all: shown as text
    if suffix in (".csv", ".tsv"):
        dialect = "excel-tab" if suffix == ".tsv" else "excel"
        lines = text.splitlines()
        if truncated and lines:
            lines = lines[:-1]  # the last line may be cut
        rows = list(csv.reader(io.StringIO("\n".join(lines[: PREVIEW_CSV_ROWS + 1])), dialect))
        more = truncated or len(lines) > PREVIEW_CSV_ROWS + 1
        return Preview(path.name, size, "csv", rows=rows, truncated=more)
    return Preview(path.name, size, "text", text, truncated=truncated)
