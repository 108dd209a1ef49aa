"""String helpers with Java's semantics: ``trim``, ``split``, ``replaceAll`` and friends."""

from __future__ import annotations

import re
from functools import lru_cache

from runtime.expressions._errors import ExpressionTypeError

#: Java's ``String.trim`` removes every character up to and including the space.
JAVA_WHITESPACE = "".join(chr(code) for code in range(33))

_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
_REPLACEMENT_TOKEN = re.compile(r"\\(.)|\$(\d+|\{\w+\})|(\\)", re.S)


def java_trim(text: str) -> str:
    """``String.trim()``: strip control characters and spaces at both ends."""
    return text.strip(JAVA_WHITESPACE)


@lru_cache(maxsize=256)
def java_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Java regular expression (named groups ``(?<n>...)`` are translated).

    :raises ExpressionTypeError: if the pattern is invalid.
    """
    try:
        return re.compile(_NAMED_GROUP.sub("(?P<", pattern))
    except re.error as exc:
        raise ExpressionTypeError(f"invalid regular expression '{pattern}': {exc}") from exc


@lru_cache(maxsize=256)
def java_replacement(replacement: str) -> str:
    """Translate a Java ``replaceAll`` replacement (``$1``, ``${name}``, ``\\$``) for ``re``."""

    def convert(match: re.Match[str]) -> str:
        escaped, group, lone_backslash = match.groups()
        if escaped is not None:
            return "\\\\" if escaped == "\\" else escaped
        if group is not None:
            return "\\g<" + group.strip("{}") + ">"
        assert lone_backslash is not None
        return "\\\\"

    return _REPLACEMENT_TOKEN.sub(convert, replacement)


def replace_all(text: str, pattern: str, replacement: str) -> str:
    """Java's ``String.replaceAll``."""
    try:
        return java_regex(pattern).sub(java_replacement(replacement), text)
    except (re.error, IndexError) as exc:
        raise ExpressionTypeError(f"invalid replacement '{replacement}': {exc}") from exc


def java_split(text: str, delimiter: str, limit: int = 0) -> list[str]:
    """Java's ``String.split(regex, limit)``.

    A positive ``limit`` caps the number of pieces; zero drops trailing empty pieces;
    a zero-width match at the very start never yields a leading empty piece.
    """
    pieces: list[str] = []
    start = 0
    matched = False
    for match in java_regex(delimiter).finditer(text):
        if limit > 0 and len(pieces) == limit - 1:
            break
        if match.end() == 0:
            continue
        matched = True
        pieces.append(text[start : match.start()])
        start = match.end()
    if not matched:
        return [text]
    pieces.append(text[start:])
    if limit == 0:
        while pieces and not pieces[-1]:
            pieces.pop()
    return pieces


def substring_before(text: str, separator: str | None) -> str:
    """Apache Commons ``StringUtils.substringBefore``."""
    if not text or separator is None:
        return text
    position = text.find(separator)
    return text if position < 0 else text[:position]


def substring_after(text: str, separator: str | None) -> str:
    """Apache Commons ``StringUtils.substringAfter``."""
    if not text:
        return text
    if separator is None:
        return ""
    position = text.find(separator)
    return "" if position < 0 else text[position + len(separator) :]


def substring_before_last(text: str, separator: str | None) -> str:
    """Apache Commons ``StringUtils.substringBeforeLast``."""
    if not text or not separator:
        return text
    position = text.rfind(separator)
    return text if position < 0 else text[:position]


def substring_after_last(text: str, separator: str | None) -> str:
    """Apache Commons ``StringUtils.substringAfterLast``."""
    if not text:
        return text
    if not separator:
        return ""
    position = text.rfind(separator)
    if position < 0 or position == len(text) - len(separator):
        return ""
    return text[position + len(separator) :]


def title(text: str) -> str:
    """Pebble's ``title``: upper-case every character that follows whitespace."""
    result: list[str] = []
    capitalize_next = True
    for char in text:
        if char.isspace():
            capitalize_next = True
        elif capitalize_next:
            char = char.title()
            capitalize_next = False
        result.append(char)
    return "".join(result)


def capitalize(text: str) -> str:
    """Pebble's ``capitalize``: upper-case the first non-blank character, keep the rest."""
    for index, char in enumerate(text):
        if not char.isspace():
            return text[:index] + char.title() + text[index + 1 :]
    return text
