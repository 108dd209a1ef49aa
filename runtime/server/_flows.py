"""``/api/v1/flows``: create, update, read, list, validate and delete flows (YAML in)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.errors import FlowValidationError, Problem
from runtime.model import Flow
from runtime.model._common import enc_hook
from runtime.parsing import parse_flow
from runtime.server._http import ApiError, json_response, query_int, read_text
from runtime.server._state import ServerState, state_of

MAX_PAGE_SIZE = 1000


def flow_dict(flow: Flow, *, source: bool = True) -> dict[str, Any]:
    """A flow as JSON data: its document, revision, and the YAML it was written in."""
    data: dict[str, Any] = msgspec.to_builtins(flow, enc_hook=enc_hook)
    data["revision"] = flow.revision
    data["deleted"] = False
    if not source:
        data.pop("source", None)
    return data


def _parse(text: str, where: str) -> Flow:
    if not text.strip():
        raise ApiError(422, "the body holds no flow", [Problem(message="empty flow document")])
    return parse_flow(text, where)


async def _known(state: ServerState, namespace: str, flow_id: str) -> Flow | None:
    return state.runtime.flows.get(namespace, flow_id)


async def create_flow(request: Request) -> Response:
    """Create a flow from its YAML (409 if one with this namespace and id exists)."""
    state = state_of(request)
    flow = _parse(await read_text(request), "<request body>")
    if await _known(state, flow.namespace, flow.id) is not None:
        raise ApiError(
            409,
            f"flow {flow.namespace}.{flow.id} exists; update it with "
            f"PUT /api/v1/flows/{flow.namespace}/{flow.id}",
        )
    kept = await state.runtime.register_flow(flow)
    state.flows_changed()
    return json_response(flow_dict(kept))


async def update_flow(request: Request) -> Response:
    """Replace a flow with new YAML; a change makes a new revision."""
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    if await _known(state, namespace, flow_id) is None:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    flow = _parse(await read_text(request), "<request body>")
    if (flow.namespace, flow.id) != (namespace, flow_id):
        raise ApiError(
            422,
            "the flow's namespace and id must match the URL",
            [
                Problem(
                    message=f"expected {namespace}.{flow_id}, found {flow.namespace}.{flow.id}",
                    path="id",
                )
            ],
        )
    kept = await state.runtime.register_flow(flow)
    state.flows_changed()
    return json_response(flow_dict(kept))


async def get_flow(request: Request) -> Response:
    """A flow (its latest revision, or ``revision``), with its source."""
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    revision = query_int(request, "revision", 0, 0, 2**31 - 1)
    flow = await _known(state, namespace, flow_id)
    if flow is None:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    if revision and revision != flow.revision:
        found = await state.runtime._flow_for(namespace, flow_id, revision)
        if found is None:
            raise ApiError(404, f"flow {namespace}.{flow_id} has no revision {revision}")
        flow = found
    return json_response(flow_dict(flow))


async def flow_revisions(request: Request) -> Response:
    """Every revision of a flow, oldest first, with its source and creation date."""
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    stored = await state.runtime.store.flow_revisions(namespace, flow_id)
    if not stored:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    return json_response(
        [
            {
                "namespace": s.namespace,
                "id": s.id,
                "revision": s.revision,
                "created": s.created,
                "source": s.source,
            }
            for s in stored
        ]
    )


async def delete_flow(request: Request) -> Response:
    """Delete a flow; its executions keep the revision they ran."""
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    if await _known(state, namespace, flow_id) is None:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    await state.runtime.delete_flow(namespace, flow_id)
    state.flows_changed()
    return Response(status_code=204)


def in_namespace(flow: Flow, namespace: str | None, exact: bool) -> bool:
    """Whether ``flow`` is in ``namespace`` (or below it, unless ``exact``); None: any."""
    if namespace is None:
        return True
    if exact:
        return flow.namespace == namespace
    return flow.namespace == namespace or flow.namespace.startswith(namespace + ".")


async def list_namespace(request: Request) -> Response:
    """The flows of one namespace (exactly that namespace), by id."""
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flows = sorted(
        (f for f in state.runtime.flows.all() if in_namespace(f, namespace, exact=True)),
        key=lambda f: f.id,
    )
    return json_response([flow_dict(f, source=False) for f in flows])


async def search_flows(request: Request) -> Response:
    """Flows by namespace (and its sub-namespaces) and a text in their id, a page at a time."""
    state = state_of(request)
    namespace = request.query_params.get("namespace") or None
    text = (request.query_params.get("q") or "").lower()
    page = query_int(request, "page", 1, 1, 1_000_000)
    size = query_int(request, "size", 25, 1, MAX_PAGE_SIZE)
    flows = sorted(
        (
            f
            for f in state.runtime.flows.all()
            if in_namespace(f, namespace, exact=False) and text in f.id.lower()
        ),
        key=lambda f: (f.namespace, f.id),
    )
    chosen = flows[(page - 1) * size : page * size]
    return json_response(
        {"results": [flow_dict(f, source=False) for f in chosen], "total": len(flows)}
    )


_DOCUMENT_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)


async def validate_flows(request: Request) -> Response:
    """Validate one or more flow documents (separated by ``---``) without saving them."""
    text = await read_text(request)
    results: list[dict[str, Any]] = []
    for index, document in enumerate(_DOCUMENT_SEPARATOR.split(text)):
        if not document.strip():
            continue
        entry: dict[str, Any] = {"index": index, "errors": []}
        try:
            flow = parse_flow(document, f"<document {index}>")
        except FlowValidationError as exc:
            entry["constraints"] = "\n".join(str(p) for p in exc.problems)
            entry["errors"] = [
                {"message": p.message, "path": p.path, "line": p.line, "column": p.column}
                for p in exc.problems
            ]
        else:
            entry["flow"] = flow.id
            entry["namespace"] = flow.namespace
        results.append(entry)
    return json_response(results)


def routes() -> list[Route]:
    """The flow routes, under ``/api/v1/flows``."""
    base = "/api/v1/flows"
    item = base + "/{namespace}/{flowId}"
    return [
        Route(base, create_flow, methods=["POST"]),
        Route(base + "/search", search_flows, methods=["GET"]),
        Route(base + "/validate", validate_flows, methods=["POST"]),
        Route(item + "/revisions", flow_revisions, methods=["GET"]),
        Route(item, get_flow, methods=["GET"]),
        Route(item, update_flow, methods=["PUT"]),
        Route(item, delete_flow, methods=["DELETE"]),
        Route(base + "/{namespace}", list_namespace, methods=["GET"]),
    ]
