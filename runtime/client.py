"""A client of ``tiercel server``'s HTTP API (used by ``tiercel executions ...``).

The server's URL comes from the caller, else ``TIERCEL_SERVER``, else
``http://127.0.0.1:8080``; the token from the caller, else ``TIERCEL_API_TOKEN``, else the
``api-token`` file a local server wrote in its data folder (``$TIERCEL_DATA`` or
``.tiercel``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import msgspec

from runtime.errors import TiercelError

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiClientError(TiercelError):
    """The server refused a request (``status``), or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []


def default_token() -> str | None:
    """The token from the environment, else from a local server's data folder."""
    token = os.environ.get("TIERCEL_API_TOKEN")
    if token:
        return token
    path = Path(os.environ.get("TIERCEL_DATA", ".tiercel")) / "api-token"
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class TiercelClient:
    """Calls to one server; every method raises :class:`ApiClientError` on failure."""

    def __init__(
        self, url: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = (url or os.environ.get("TIERCEL_SERVER") or DEFAULT_URL).rstrip("/")
        token = token or default_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def __enter__(self) -> TiercelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiClientError(0, f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return msgspec.json.decode(self._call(method, path, **kwargs).content)

    # -- executions --------------------------------------------------------------------

    def search(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: list[str] | None = None,
        page: int = 1,
        size: int = 25,
    ) -> dict[str, Any]:
        """A page of executions, newest first: ``{"results": [...], "total": n}``."""
        params: list[tuple[str, str | int]] = [("page", page), ("size", size)]
        if namespace:
            params.append(("namespace", namespace))
        if flow_id:
            params.append(("flowId", flow_id))
        params += [("state", s) for s in states or []]
        result: dict[str, Any] = self._json("GET", "/api/v1/executions/search", params=params)
        return result

    def get(self, execution_id: str) -> dict[str, Any]:
        """One execution."""
        result: dict[str, Any] = self._json("GET", f"/api/v1/executions/{execution_id}")
        return result

    def start(
        self,
        namespace: str,
        flow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start an execution (inputs as JSON)."""
        result: dict[str, Any] = self._json(
            "POST",
            f"/api/v1/executions/{namespace}/{flow_id}",
            params={"wait": str(wait).lower()},
            json=dict(inputs or {}),
        )
        return result

    def kill(self, execution_id: str) -> dict[str, Any]:
        """Kill an execution."""
        result: dict[str, Any] = self._json("DELETE", f"/api/v1/executions/{execution_id}/kill")
        return result

    def pause(self, execution_id: str) -> dict[str, Any]:
        """Pause an execution."""
        result: dict[str, Any] = self._json("POST", f"/api/v1/executions/{execution_id}/pause")
        return result

    def resume(self, execution_id: str, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Resume a paused execution with ``onResume`` inputs."""
        result: dict[str, Any] = self._json(
            "POST", f"/api/v1/executions/{execution_id}/resume", json=dict(inputs or {})
        )
        return result

    def restart(self, execution_id: str) -> dict[str, Any]:
        """Restart a failed execution in place."""
        result: dict[str, Any] = self._json("POST", f"/api/v1/executions/{execution_id}/restart")
        return result

    def logs(self, execution_id: str, min_level: str | None = None) -> list[dict[str, Any]]:
        """The log lines of an execution."""
        params = {"minLevel": min_level} if min_level else {}
        result: list[dict[str, Any]] = self._json(
            "GET", f"/api/v1/logs/{execution_id}", params=params
        )
        return result

    def follow(
        self, execution_id: str, path: str = "/api/v1/executions/{id}/follow"
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Server-sent events of an execution until it ends: (id, event, data) tuples.

        Reconnects after a dropped connection, resuming from the last event seen.
        """
        last = ""
        url = path.format(id=execution_id)
        for _ in range(100):
            headers = {"Last-Event-ID": last} if last else {}
            try:
                with self._http.stream("GET", url, headers=headers, timeout=None) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _error_of(response)
                    for event_id, name, data in _parse_sse(response.iter_lines()):
                        last = event_id or last
                        yield event_id, name, data
            except httpx.TransportError:
                continue
            return
        raise ApiClientError(0, f"lost the stream of {execution_id} too many times")


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    event_id, name = "", "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event_id, name, msgspec.json.decode("\n".join(data))
            event_id, name, data = "", "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "id":
                event_id = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)


def _error_of(response: httpx.Response) -> ApiClientError:
    try:
        body = msgspec.json.decode(response.content)
        message = str(body.get("message", response.reason_phrase))
        errors = list(body.get("errors", []))
    except (msgspec.DecodeError, AttributeError):
        message, errors = response.text or response.reason_phrase, []
    return ApiClientError(response.status_code, message, errors)
