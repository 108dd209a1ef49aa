"""String filters: case, trimming, splitting, replacing, encoding, hashing.

Each filter takes the filtered value first (positional-only, so that a Kestra argument may
be called ``value``) and Kestra's argument names after it. Most return ``null`` for a
``null`` input, as their Java counterparts do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from runtime.expressions import _strings
from runtime.expressions._checks import as_text, need, need_int
from runtime.expressions._errors import ExpressionTypeError
from runtime.expressions._state import check_size
from runtime.expressions._text import java_string


def upper(subject: Any, /) -> Any:
    """``upper``: upper-case text."""
    return None if subject is None else as_text(subject).upper()


def lower(subject: Any, /) -> Any:
    """``lower``: lower-case text."""
    return None if subject is None else as_text(subject).lower()


def trim(subject: Any, /) -> Any:
    """``trim``: Java's ``String.trim``."""
    return None if subject is None else _strings.java_trim(as_text(subject))


def title(subject: Any, /) -> Any:
    """``title``: upper-case the first letter of each word."""
    return None if subject is None else _strings.title(as_text(subject))


def capitalize(subject: Any, /) -> Any:
    """``capitalize``: upper-case the first letter, leave the rest alone."""
    return None if subject is None else _strings.capitalize(as_text(subject))


def abbreviate(subject: Any, /, length: Any) -> Any:
    """``abbreviate(length)``: cut to ``length`` characters, ending with ``...``."""
    if subject is None:
        return None
    text, width = as_text(subject), need_int(length, "abbreviate's length")
    need(width >= 0, "abbreviate's length must not be negative")
    if len(text) < width or len(text) <= 3:
        return text
    if width <= 3:
        return text[:width]
    return text[: width - 3] + "..."


def split(subject: Any, /, delimiter: Any, limit: Any = None) -> Any:
    """``split(delimiter, limit)``: Java's regex ``String.split``."""
    if subject is None:
        return None
    need(isinstance(delimiter, str), "split needs a string delimiter")
    count = 0 if limit is None else need_int(limit, "split's limit")
    return _strings.java_split(as_text(subject), delimiter, count)


def replace(subject: Any, /, replace_pairs: Any, regexp: Any = False) -> Any:
    """``replace({'a': 'b'}, regexp=false)``: on a string, or every string in a map/list."""
    if subject is None:
        return None
    need(isinstance(replace_pairs, Mapping), "replace needs a map of replacements")
    need(isinstance(regexp, bool), "replace's regexp must be a boolean")
    return _replace_in(subject, replace_pairs, regexp)


def _replace_in(value: Any, pairs: Mapping[Any, Any], regexp: bool) -> Any:
    if isinstance(value, Mapping):
        return {key: _replace_in(item, pairs, regexp) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_in(item, pairs, regexp) for item in value]
    text = java_string(value)
    for old, new in pairs.items():
        if regexp:
            text = _strings.replace_all(text, java_string(old), java_string(new))
        else:
            text = text.replace(java_string(old), java_string(new))
        check_size(len(text), "string")
    return text


def starts_with(subject: Any, /, value: Any) -> bool:
    """``startsWith(value)``."""
    need(subject is not None, "startsWith cannot be applied to null")
    return as_text(subject).startswith(java_string(value))


def ends_with(subject: Any, /, value: Any) -> bool:
    """``endsWith(value)``."""
    need(subject is not None, "endsWith cannot be applied to null")
    return as_text(subject).endswith(java_string(value))


def substring(name: str, cut: Callable[[str, str | None], str]) -> Callable[[Any, Any], Any]:
    """The ``substringBefore``-style filter ``name`` that cuts with ``cut``."""

    def apply(subject: Any, /, separator: Any) -> Any:
        if subject is None:
            return None
        need(separator is None or isinstance(separator, str), f"{name} needs a string")
        return cut(as_text(subject), separator)

    apply.__doc__ = f"``{name}(separator)``, as Apache Commons' StringUtils."
    return apply


def slugify(subject: Any, /) -> Any:
    """``slugify``: lower-case ASCII words joined by dashes (python-slugify)."""
    from slugify import slugify as _slugify  # imported on first use: it is slow to import

    return None if subject is None else _slugify(as_text(subject))


def escape_char(subject: Any, /, type: Any) -> Any:
    """``escapeChar(type)``: escape quotes for ``single``, ``double`` or ``shell`` quoting."""
    if subject is None:
        return None
    style = str(type).lower() if isinstance(type, str) else None
    replacement = {"single": "\\'", "double": '\\"', "shell": "'\\''"}.get(style or "")
    need(replacement is not None, "escapeChar's type must be 'single', 'double' or 'shell'")
    quote = '"' if style == "double" else "'"
    return _map_strings(subject, lambda text: text.replace(quote, str(replacement)))


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, Mapping):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_map_strings(item, change) for item in value]
    return change(java_string(value))


def indenter(name: str, *, leading: bool) -> Callable[..., Any]:
    """``indent`` (``leading=False``) or ``nindent`` (a newline first)."""

    def apply(subject: Any, /, amount: Any, prefix: Any = " ") -> Any:
        if subject is None:
            return None
        text = as_text(subject)
        if not text:
            return text
        width = need_int(amount, f"{name}'s amount")
        need(width >= 0 and isinstance(prefix, str), f"{name} needs amount >= 0 and a prefix")
        newline = _line_separator(text)
        source = newline + text if leading else text
        check_size(len(source) + source.count(newline) * width * len(prefix), "string")
        return source.replace(newline, newline + prefix * width)

    apply.__doc__ = f"``{name}(amount, prefix=' ')``: indent lines after the first."
    return apply


def _line_separator(text: str) -> str:
    for separator in ("\r\n", "\n\r", "\n", "\r"):
        if separator in text:
            return separator
    return "\n"


def url_encode(subject: Any, /) -> Any:
    """``urlencode``: Java's ``URLEncoder`` (spaces become ``+``)."""
    if subject is None:
        return None
    return quote_plus(as_text(subject), safe="*").replace("~", "%7E")


def url_decode(subject: Any, /) -> Any:
    """``urldecode``: Java's ``URLDecoder``."""
    return None if subject is None else unquote_plus(as_text(subject))


def base64_encode(subject: Any, /) -> Any:
    """``base64encode``: Base64 of the UTF-8 bytes."""
    if subject is None:
        return None
    return base64.b64encode(as_text(subject).encode()).decode("ascii")


def base64_decode(subject: Any, /) -> Any:
    """``base64decode``: decode Base64 into UTF-8 text."""
    if subject is None:
        return None
    try:
        return base64.b64decode(as_text(subject), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ExpressionTypeError(f"invalid Base64 input: {exc}") from exc


def digest(algorithm: str) -> Callable[[Any], Any]:
    """The hashing filter for a :mod:`hashlib` ``algorithm`` (``md5``, ``sha256``...)."""

    def apply(subject: Any, /) -> Any:
        if subject is None:
            return None
        need(isinstance(subject, str), f"{algorithm} needs a string to hash")
        return hashlib.new(algorithm, subject.encode()).hexdigest()

    apply.__doc__ = f"``{algorithm}``: hexadecimal digest of the UTF-8 bytes."
    return apply
