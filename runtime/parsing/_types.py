"""Type-directed checks msgspec does not do: unknown keys with suggestions, scalar-to-text
coercion as Jackson does it, and friendly wording of msgspec's errors."""

from __future__ import annotations

import difflib
import enum
import functools
import re
from collections.abc import Callable, Hashable
from typing import Any

import msgspec
from msgspec import inspect as mi

from runtime.parsing._yaml import Path

Report = Callable[[Path, str, bool], None]
"""report(path, message, at_key)"""

_MSGSPEC_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(?:'|\")(.*?)(?:'|\")\]")


@functools.cache
def _cached_type_info(cls: Hashable) -> mi.Type:
    return mi.type_info(cls)


def type_info(cls: Any) -> mi.Type:
    """msgspec's description of ``cls`` (cached)."""
    return _cached_type_info(cls)


def suggest(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


_SCALAR_TYPES = (mi.IntType, mi.FloatType, mi.BoolType, mi.AnyType)


def _is_text(kind: mi.Type) -> bool:
    """Text is the only scalar ``kind`` accepts, so a number or boolean should become text."""
    if isinstance(kind, mi.StrType):
        return True
    if isinstance(kind, mi.UnionType):
        return any(isinstance(t, mi.StrType) for t in kind.types) and not any(
            isinstance(t, _SCALAR_TYPES) for t in kind.types
        )
    return False


def _struct_types(kind: mi.Type) -> list[mi.StructType]:
    if isinstance(kind, mi.StructType):
        return [kind]
    if isinstance(kind, mi.UnionType):
        return [t for t in kind.types if isinstance(t, mi.StructType)]
    return []


def prepare(data: Any, kind: mi.Type, path: Path, report: Report) -> Any:
    """Check ``data`` against ``kind`` before msgspec converts it.

    Reports unknown keys (with a "did you mean"), drops them, and turns scalars into
    text where text is expected (``value: 1`` for a string property). Returns the data
    to convert.
    """
    if isinstance(data, bool | int | float) and _is_text(kind):
        return _as_text(data)
    structs = _struct_types(kind)
    if structs and isinstance(data, dict):
        struct = _pick_struct(structs, data, path, report)
        return data if struct is None else _prepare_struct(data, struct, path, report)
    if isinstance(kind, mi.ListType) and isinstance(data, list):
        return [prepare(item, kind.item_type, (*path, i), report) for i, item in enumerate(data)]
    if isinstance(kind, mi.DictType) and isinstance(data, dict):
        return {k: prepare(v, kind.value_type, (*path, k), report) for k, v in data.items()}
    if isinstance(kind, mi.UnionType) and isinstance(data, list):
        lists = [t for t in kind.types if isinstance(t, mi.ListType)]
        if len(lists) == 1:
            return prepare(data, lists[0], path, report)
    return data


def _pick_struct(
    structs: list[mi.StructType], data: dict[str, Any], path: Path, report: Report
) -> mi.StructType | None:
    if len(structs) == 1:
        return structs[0]
    tag_field = structs[0].tag_field
    if tag_field is None:
        return None
    tags = [str(s.tag) for s in structs]
    tag = data.get(tag_field)
    if tag is None:
        report(
            (*path, tag_field), f"missing {tag_field!r}; expected one of {', '.join(tags)}", True
        )
        return None
    for struct in structs:
        if struct.tag == tag:
            return struct
    report(
        (*path, tag_field),
        f"unknown {tag_field} {tag!r}; expected one of {', '.join(tags)}{suggest(str(tag), tags)}",
        False,
    )
    return None


def _prepare_struct(
    data: dict[str, Any], struct: mi.StructType, path: Path, report: Report
) -> dict[str, Any]:
    fields = {f.encode_name: f for f in struct.fields}
    allowed = list(fields)
    if struct.tag_field is not None:
        allowed.append(struct.tag_field)
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key == struct.tag_field:
            result[key] = value
            continue
        field = fields.get(key)
        if field is None:
            report(
                (*path, key),
                f"unknown property {key!r}{suggest(key, allowed)}",
                True,
            )
            continue
        result[key] = prepare(value, field.type, (*path, key), report)
    return result


def convert(data: Any, cls: type[Any], path: Path, report: Report, dec_hook: Any) -> Any:
    """``msgspec.convert`` with its error reported at the right path, in plain words.

    Returns None when the data does not convert.
    """
    try:
        return msgspec.convert(data, cls, dec_hook=dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        message, sub = split_error(str(exc))
        full = (*path, *sub)
        report(full, explain(message, _value_at(data, sub), _type_at(type_info(cls), sub)), False)
        return None


def split_error(text: str) -> tuple[str, Path]:
    """Split msgspec's ``"... - at `$.a[0].b`"`` into the message and the path."""
    match = _MSGSPEC_AT.match(text)
    if match is None or match.group("path") is None:
        return text, ()
    parts: list[str | int] = []
    for name, index, quoted in _PATH_PART.findall(match.group("path")):
        parts.append(int(index) if index else name or quoted)
    return match.group("message"), tuple(parts)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _type_at(kind: mi.Type, path: Path) -> mi.Type | None:
    for part in path:
        structs = _struct_types(kind)
        if structs and isinstance(part, str):
            match = [f.type for s in structs for f in s.fields if f.encode_name == part]
            if not match:
                return None
            kind = match[0]
        elif isinstance(kind, mi.ListType) and isinstance(part, int):
            kind = kind.item_type
        elif isinstance(kind, mi.DictType):
            kind = kind.value_type
        elif isinstance(kind, mi.UnionType):
            inner = [t for t in kind.types if not isinstance(t, mi.NoneType)]
            if len(inner) != 1:
                return None
            kind = inner[0]
            return _type_at(kind, (part,))
        else:
            return None
    return kind


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean"}.get(type(value))
    if kind is None:
        kind = "a number" if isinstance(value, int | float) else type(value).__name__
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{kind} {shown}" if not isinstance(value, dict | list) else kind


def _enum_values(kind: mi.Type | None) -> list[str]:
    if isinstance(kind, mi.UnionType):
        for inner in kind.types:
            if values := _enum_values(inner):
                return values
    if isinstance(kind, mi.EnumType) and issubclass(kind.cls, enum.Enum):
        return [str(member.value) for member in kind.cls]
    if isinstance(kind, mi.LiteralType):
        return [str(v) for v in kind.values]
    return []


_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def explain(message: str, value: Any, kind: mi.Type | None) -> str:
    """msgspec's message in the words of this project: expected what, found what."""
    if match := _MISSING.match(message):
        return f"missing required property {match.group('field')!r}"
    choices = _enum_values(kind)
    if choices and (message.startswith("Invalid enum value") or _EXPECTED.match(message)):
        return (
            f"expected one of {', '.join(choices)}, found {_describe(value)}"
            f"{suggest(str(value), choices)}"
        )
    if match := _EXPECTED.match(message):
        want = match.group("want").replace(" | null", " or nothing").replace("array", "list")
        want = want.replace("object", "mapping").replace("str", "text")
        return f"expected {want}, found {_describe(value)}"
    return message[:1].lower() + message[1:]
