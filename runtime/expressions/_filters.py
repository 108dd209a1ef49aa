"""The filter table: Kestra's filter names, Pebble's core filters, and their functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.expressions import _filters_data as data
from runtime.expressions import _filters_dates as dates
from runtime.expressions import _filters_text as text
from runtime.expressions import _strings as strings

FILTERS: dict[str, Callable[..., Any]] = {
    "abbreviate": text.abbreviate,
    "abs": data.absolute,
    "base64decode": text.base64_decode,
    "base64encode": text.base64_encode,
    "capitalize": text.capitalize,
    "chunk": data.chunk,
    "date": dates.date,
    "dateAdd": dates.date_add,
    "default": data.default,
    "distinct": data.distinct,
    "endsWith": text.ends_with,
    "escapeChar": text.escape_char,
    "first": data.first,
    "flatten": data.flatten,
    "indent": text.indenter("indent", leading=False),
    "join": data.join,
    "json": data.to_json_filter,
    "keys": data.keys,
    "last": data.last,
    "length": data.length,
    "lower": text.lower,
    "md5": text.digest("md5"),
    "merge": data.merge,
    "nindent": text.indenter("nindent", leading=True),
    "number": data.number,
    "replace": text.replace,
    "reverse": data.reverse,
    "rsort": data.rsort,
    "sha1": text.digest("sha1"),
    "sha256": text.digest("sha256"),
    "sha512": text.digest("sha512"),
    "slice": data.slice_,
    "slugify": text.slugify,
    "sort": data.sort,
    "split": text.split,
    "startsWith": text.starts_with,
    "substringAfter": text.substring("substringAfter", strings.substring_after),
    "substringAfterLast": text.substring("substringAfterLast", strings.substring_after_last),
    "substringBefore": text.substring("substringBefore", strings.substring_before),
    "substringBeforeLast": text.substring("substringBeforeLast", strings.substring_before_last),
    "timestamp": dates.timestamp,
    "timestampNano": dates.timestamp_nano,
    "title": text.title,
    "toJson": data.to_json_filter,
    "trim": text.trim,
    "upper": text.upper,
    "urldecode": text.url_decode,
    "urlencode": text.url_encode,
    "values": data.values,
    "yaml": data.to_yaml,
}

#: Filters that receive an undefined input instead of failing on it.
LENIENT_FILTERS = frozenset({"default"})
