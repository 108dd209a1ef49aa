"""The served OpenAPI document: it lists exactly the routes, and the server keeps it
(schemathesis generates requests from it and checks every answer against it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from runtime.server._openapi import openapi_document
from runtime.server.app import api_routes
from tests.server_process import ServerProcess, running_server

FLOW = """
id: hello
namespace: company.team
inputs:
  - {id: who, type: STRING, defaults: world}
tasks:
  - {id: greet, type: Return, format: "hello {{ inputs.who }}"}
triggers:
  - {id: web, type: Webhook, key: a-webhook-key-for-tests}
"""

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("openapi")
    flows = root / "flows"
    flows.mkdir()
    (flows / "hello.yaml").write_text(FLOW)
    with running_server(root / "data", "--flows", str(flows)) as process:
        with process.client() as client:  # something to find, so that 200s are exercised
            response = client.post("/api/v1/executions/company.team/hello?wait=true", json={})
            assert response.status_code == 200
        yield process


def test_the_document_lists_exactly_the_routes() -> None:
    served = {
        (method.lower(), route.path)
        for route in api_routes()
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (method, path) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert served == documented


def test_the_server_serves_the_document(server: ServerProcess) -> None:
    with server.client() as client:
        assert client.get("/api/v1/openapi.json").json() == openapi_document()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.exclude(path_regex=r".*/follow$").parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_answer_fits_the_document(
    case: schemathesis.Case[Any], server: ServerProcess
) -> None:
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        checks=CHECKS,
        timeout=30,
    )
