"""Encoding what crosses the database between executors and workers: attempt requests and
outcomes. Dates and times keep their types (variables hold ``datetime`` values that
expressions format), so they travel as tagged objects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from runtime.engine._services import AttemptOutcome, AttemptRequest

_TAG = "$tiercel"


def _enc_hook(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, time):
        return {_TAG: "time", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "v": value.total_seconds()}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to a worker")


def _seconds(value: Any) -> timedelta:
    return timedelta(seconds=float(value))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "timedelta": _seconds,
    "decimal": Decimal,
}


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is not None and len(value) == 2 and "v" in value:
            return _DECODERS[tag](value["v"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
_REQUEST = msgspec.json.Decoder(AttemptRequest)
_OUTCOME = msgspec.json.Decoder(AttemptOutcome)


def encode(value: AttemptRequest | AttemptOutcome) -> bytes:
    """A request or an outcome as JSON bytes."""
    return _ENCODER.encode(value)


def decode_request(body: bytes) -> AttemptRequest:
    """A request back, with its dates and times as they were."""
    request = _REQUEST.decode(body)
    request.variables = _restore(request.variables)
    request.error_logs = _restore(request.error_logs)
    return request


def decode_outcome(body: bytes) -> AttemptOutcome:
    """An outcome back, with its dates and times as they were."""
    outcome = _OUTCOME.decode(body)
    if outcome.outputs is not None:
        outcome.outputs = _restore(outcome.outputs)
    return outcome
