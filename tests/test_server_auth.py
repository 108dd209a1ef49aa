"""Authentication: decided on the matched route; every route but /health needs credentials."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.server._openapi import openapi_document
from tests.server_process import ServerProcess, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("auth")
    with running_server(
        root / "data",
        env={
            "TIERCEL_API_TOKEN": "a-token-that-is-long-enough",
            "TIERCEL_BASIC_AUTH": "admin:correct horse battery",
        },
    ) as process:
        yield process


def concrete(path: str) -> str:
    """A path template with made-up values for its parameters."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def operations() -> list[tuple[str, str]]:
    return [
        (method.upper(), concrete(path))
        for path, methods in openapi_document()["paths"].items()
        for method in methods
    ]


def raw_request(server: ServerProcess, method: str, target: str) -> int:
    """Send a request line exactly as written (no client-side path normalization)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = connection.recv(4096).decode("latin-1")
    return int(head.split(" ", 2)[1])


def test_every_operation_but_health_answers_401_without_credentials(server: ServerProcess) -> None:
    with server.client(token="") as anonymous:
        for method, path in operations():
            response = anonymous.request(method, path)
            if path == "/health":
                assert response.status_code == 200
            else:
                assert response.status_code == 401, (method, path, response.status_code)


def test_encoded_suffixed_and_unknown_paths_need_credentials_too(server: ServerProcess) -> None:
    targets = [
        "/health/",
        "/health/x",
        "/HEALTH",
        "/health%2F..%2Fapi%2Fv1%2Fexecutions%2Fsearch",
        "/health/../api/v1/executions/search",
        "/api/v1/executions/search/",
        "/api/v1/executions/search;/health",
        "/api/v1/executions/search%3B/health",
        "/api/v1/executions/search?/health",
        "//api/v1/executions/search",
        "/api/v1/flows/%2e%2e/health",
        "/api/v1/executions/search/..;/health",
        "/metrics/health",
        "/nothing/here",
    ]
    for target in targets:
        assert raw_request(server, "GET", target) == 401, target
    assert raw_request(server, "GET", "/health") == 200
    assert raw_request(server, "GET", "/health?x=1") == 200


def test_bearer_and_basic_credentials(server: ServerProcess) -> None:
    with server.client(token="a-token-that-is-long-enough") as bearer:
        assert bearer.get("/api/v1/executions/search").status_code == 200
    good = base64.b64encode(b"admin:correct horse battery").decode()
    bad = base64.b64encode(b"admin:wrong").decode()
    with httpx.Client(base_url=server.url) as client:
        assert (
            client.get(
                "/api/v1/executions/search", headers={"Authorization": f"Basic {good}"}
            ).status_code
            == 200
        )
        for header in (
            f"Basic {bad}",
            "Basic !!!",
            "Bearer",
            "Token a-token-that-is-long-enough",
            "",
        ):
            response = client.get("/api/v1/executions/search", headers={"Authorization": header})
            assert response.status_code == 401, header
    assert not (server.data / "api-token").exists()  # a configured token is not written


def test_a_generated_token_is_private_and_kept_across_restarts(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as first:
        token = first.token
        assert len(token) >= 32
        assert (tmp_path / "data" / "api-token").stat().st_mode & 0o077 == 0
        with first.client() as client:
            assert client.get("/api/v1/executions/search").status_code == 200
    with running_server(tmp_path / "data") as second:
        assert second.token == token


def test_without_auth_everything_answers(tmp_path: Path) -> None:
    with (
        running_server(tmp_path / "data", "--no-auth") as server,
        server.client(token="") as client,
    ):
        assert client.get("/api/v1/executions/search").status_code == 200
        assert "authentication is OFF" in server.log
