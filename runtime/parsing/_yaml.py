"""Safe, bounded YAML loading that remembers where every value came from."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PathKey = str | int
Path = tuple[PathKey, ...]
Mark = tuple[int, int]  # 1-based line and column

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(
    _TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp", "value")
)


class YamlLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on a document, so a hostile one is rejected fast and in bounded memory.

    ``max_nodes`` counts values after alias expansion: a "billion laughs" document has
    few nodes but expands to billions, and is stopped when the count passes the limit.
    """

    max_bytes: int = 2 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 200_000


class YamlSyntaxError(Exception):
    """A document that cannot be loaded at all; ``mark`` is where, when known."""

    def __init__(self, message: str, mark: Mark | None = None, path: Path = ()) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark
        self.path = path


class Located(msgspec.Struct):
    """Plain data loaded from YAML, with the position of each value and each mapping key."""

    data: Any
    values: dict[Path, Mark]
    keys: dict[Path, Mark]

    def mark(self, path: Path) -> Mark | None:
        """Where the value at ``path`` is, or its nearest ancestor when it has no position."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return None

    def key_mark(self, path: Path) -> Mark | None:
        """Where the mapping key of ``path`` is written, else :meth:`mark`."""
        return self.keys.get(path) or self.mark(path)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false, as Jackson reads them
    (YAML 1.1 would turn ``yes``, ``no``, ``on`` and ``off`` into booleans)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TAG + "bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mark(node: Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str, limits: YamlLimits | None = None) -> Located:
    """Load one YAML document with PyYAML's safe loader, within ``limits``.

    :raises YamlSyntaxError: on a syntax error, a tag other than YAML's standard ones
        (``!!python/...`` included), a duplicate key, or a limit passed.
    """
    limits = limits or YamlLimits()
    size = len(text.encode("utf-8", errors="replace"))
    if size > limits.max_bytes:
        raise YamlSyntaxError(f"document is {size} bytes; the limit is {limits.max_bytes}")
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        where: Mark | None = (before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)
        raise YamlSyntaxError(
            f"invalid YAML: character #x{exc.character:04x} is not allowed", where
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        loader.dispose()
        mark = exc.problem_mark or exc.context_mark
        at: Mark | None = (mark.line + 1, mark.column + 1) if mark is not None else None
        raise YamlSyntaxError(f"invalid YAML: {exc.problem or exc.context}", at) from None
    except yaml.YAMLError as exc:
        loader.dispose()
        raise YamlSyntaxError(f"invalid YAML: {exc}") from None
    try:
        if node is None:
            return Located(None, {}, {})
        return _Converter(loader, limits).run(node)
    finally:
        loader.dispose()


class _Converter:
    def __init__(self, loader: _Loader, limits: YamlLimits) -> None:
        self.loader = loader
        self.limits = limits
        self.count = 0
        self.values: dict[Path, Mark] = {}
        self.keys: dict[Path, Mark] = {}

    def run(self, node: Node) -> Located:
        data = self.convert(node, ())
        return Located(data, self.values, self.keys)

    def convert(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > self.limits.max_nodes:
            raise YamlSyntaxError(
                f"document expands to more than {self.limits.max_nodes} values "
                "(aliases included); refusing to load it",
                _mark(node),
                path,
            )
        if len(path) > self.limits.max_depth:
            raise YamlSyntaxError(
                f"document is nested deeper than {self.limits.max_depth} levels", _mark(node), path
            )
        self.values.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if isinstance(node, SequenceNode):
            self.check_tag(node, _TAG + "seq", path)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            self.check_tag(node, _TAG + "map", path)
            return self.mapping(node, path)
        raise YamlSyntaxError(f"unsupported YAML node {type(node).__name__}", _mark(node), path)

    def check_tag(self, node: Node, expected: str, path: Path) -> None:
        if node.tag != expected:
            raise YamlSyntaxError(
                f"YAML tag {node.tag!r} is not allowed (only plain YAML data)", _mark(node), path
            )

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        if node.tag not in _SCALAR_TAGS:
            raise YamlSyntaxError(
                f"YAML tag {node.tag!r} is not allowed (only plain YAML data)", _mark(node), path
            )
        if node.tag == _TAG + "timestamp":
            return node.value  # dates stay text, as in Kestra
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(f"invalid value: {exc}", _mark(node), path) from None

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        try:
            self.loader.flatten_mapping(node)  # resolves "<<" merge keys
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(f"invalid merge key: {exc}", _mark(node), path) from None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlSyntaxError("mapping keys must be plain text", _mark(key_node), path)
            raw_key = self.scalar(key_node, path)
            key = _key_text(raw_key)
            child = (*path, key)
            if key in result:
                first = self.keys.get(child)
                where = f" (first at line {first[0]})" if first else ""
                raise YamlSyntaxError(f"duplicate key {key!r}{where}", _mark(key_node), child)
            self.keys[child] = _mark(key_node)
            result[key] = self.convert(value_node, child)
        return result


def _key_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
