"""The OpenAPI 3.1 document of the HTTP API, served at ``/api/v1/openapi.json``.

Written as a table next to the routes; a test checks that both list the same operations.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from runtime._version import __version__
from runtime.engine import Execution
from runtime.server._http import ErrorBody
from runtime.store import LogEntry, MetricAggregate, MetricEntry

_REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(name=name)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_ERROR = {"content": _json(_ref("ErrorBody"))}
_COMMON_ERRORS = {
    "400": {"description": "A malformed request (a query parameter, the body)", **_ERROR},
    "401": {"description": "No or wrong credentials", **_ERROR},
    "413": {"description": "The body is over the size limit", **_ERROR},
}
_EXECUTION = {"description": "The execution", "content": _json(_ref("Execution"))}
_FLOW_OBJECT = {
    "type": "object",
    "required": ["id", "namespace", "revision"],
    "properties": {
        "id": {"type": "string"},
        "namespace": {"type": "string"},
        "revision": {"type": "integer"},
        "source": {"type": "string"},
        "deleted": {"type": "boolean"},
    },
}
_PAGE_PARAMS: list[tuple[str, str, dict[str, Any], bool]] = [
    ("page", "query", {"type": "integer", "minimum": 1, "maximum": 1000000}, False),
    ("size", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
]
_Param = tuple[str, str, dict[str, Any], bool]
_EXECUTION_ID: _Param = ("executionId", "path", {"type": "string"}, True)
_NS: _Param = ("namespace", "path", {"type": "string"}, True)
_FLOW_ID: _Param = ("flowId", "path", {"type": "string"}, True)
_MULTIPART_OR_JSON = {
    "required": False,
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "multipart/form-data": {"schema": {"type": "object"}},
    },
}
_YAML_BODY = {
    "required": True,
    "content": {"application/x-yaml": {"schema": {"type": "string"}}},
}
_TEXT_BODY = {
    "required": True,
    "content": {"text/plain": {"schema": {"type": "string", "maxLength": 10000}}},
}
_EVAL = {
    "description": "The value (``result``), or why it has none (``error``)",
    "content": _json(
        {
            "type": "object",
            "required": ["result", "error"],
            "properties": {"result": {}, "error": {"type": ["string", "null"]}},
        }
    ),
}
_SSE = {"description": "Server-sent events", "content": {"text/event-stream": {"schema": {}}}}


def _op(
    summary: str,
    tag: str,
    params: list[tuple[str, str, dict[str, Any], bool]],
    responses: dict[str, Any],
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
    operation_id: str = "",
) -> dict[str, Any]:
    all_responses = dict(responses)
    all_responses.update(_COMMON_ERRORS)
    described = {
        "403": "The file is not this execution's",
        "404": "No such execution, flow or file",
        "409": "The execution or flow is not in a state that allows this",
        "415": "The body is of a type this operation does not read",
        "422": "The flow, the inputs or the body is invalid",
        "503": "The server is stopping",
    }
    for code in errors:
        all_responses[code] = {"description": described[code], **_ERROR}
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [
            {"name": name, "in": where, "schema": schema, "required": required}
            for name, where, schema, required in params
        ],
        "responses": all_responses,
        "security": [{"bearer": []}, {"basic": []}],
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def _operations() -> dict[str, dict[str, Any]]:
    ex = "/api/v1/executions"
    item = ex + "/{executionId}"
    fl = "/api/v1/flows"
    flow_item = fl + "/{namespace}/{flowId}"
    state_enum = {"type": "string", "enum": [s.value for s in _states()]}
    return {
        "/health": {
            "get": {
                **_op("Whether the server is up", "Server", [], {}, operation_id="health"),
                "security": [],
                "responses": {
                    "200": {"description": "Up", "content": _json({"type": "object"})},
                    "503": {"description": "Stopping", "content": _json({"type": "object"})},
                },
            }
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                "Server",
                [],
                {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {}}}}},
                operation_id="prometheusMetrics",
            )
        },
        "/api/v1/openapi.json": {
            "get": _op(
                "This document",
                "Server",
                [],
                {"200": {"description": "OpenAPI", "content": _json({"type": "object"})}},
                operation_id="openapi",
            )
        },
        ex + "/search": {
            "get": _op(
                "Search executions, newest first",
                "Executions",
                [
                    ("namespace", "query", {"type": "string"}, False),
                    ("flowId", "query", {"type": "string"}, False),
                    ("state", "query", {"type": "array", "items": state_enum}, False),
                    ("labels", "query", {"type": "array", "items": {"type": "string"}}, False),
                    ("startDate", "query", {"type": "string", "format": "date-time"}, False),
                    ("endDate", "query", {"type": "string", "format": "date-time"}, False),
                    *_PAGE_PARAMS,
                ],
                {
                    "200": {
                        "description": "A page of executions",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["results", "total"],
                                "properties": {
                                    "results": {"type": "array", "items": _ref("Execution")},
                                    "total": {"type": "integer"},
                                },
                            }
                        ),
                    }
                },
                operation_id="searchExecutions",
            )
        },
        ex + "/webhook/{namespace}/{flowId}/{key}": {
            method: {
                **_op(
                    "Start a flow from its Webhook trigger (the key is the credential)",
                    "Executions",
                    [_NS, _FLOW_ID, ("key", "path", {"type": "string"}, True)],
                    {"200": _EXECUTION},
                    body={"required": False, "content": {"*/*": {"schema": {}}}}
                    if method != "get"
                    else None,
                    errors=("404", "422", "503"),
                    operation_id=f"webhook{method.capitalize()}",
                ),
                "security": [],
            }
            for method in ("get", "post", "put")
        },
        item + "/follow": {
            "get": _op(
                "Follow an execution's events (resume with Last-Event-ID)",
                "Executions",
                [
                    _EXECUTION_ID,
                    ("view", "query", {"type": "string", "enum": ["events", "execution"]}, False),
                    ("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]+$"}, False),
                ],
                {"200": _SSE},
                errors=("404",),
                operation_id="followExecution",
            )
        },
        item + "/kill": {
            "delete": _op(
                "Kill an execution (and the subflows it waits for)",
                "Executions",
                [_EXECUTION_ID],
                {"202": _EXECUTION},
                errors=("404", "409"),
                operation_id="killExecution",
            )
        },
        item + "/pause": {
            "post": _op(
                "Pause a running execution",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EXECUTION},
                errors=("404", "409"),
                operation_id="pauseExecution",
            )
        },
        item + "/resume": {
            "post": _op(
                "Resume a paused execution, with onResume inputs",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EXECUTION},
                body=_MULTIPART_OR_JSON,
                errors=("404", "409", "415", "422"),
                operation_id="resumeExecution",
            )
        },
        item + "/restart": {
            "post": _op(
                "Restart a failed, killed or warning execution in place",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EXECUTION},
                errors=("404", "409", "503"),
                operation_id="restartExecution",
            )
        },
        item + "/replay": {
            "post": _op(
                "Replay an execution from a task run, as a new execution",
                "Executions",
                [_EXECUTION_ID, ("taskRunId", "query", {"type": "string"}, True)],
                {"200": _EXECUTION},
                errors=("404", "409", "503"),
                operation_id="replayExecution",
            )
        },
        item + "/state": {
            "post": _op(
                "Change the state of a task run of a finished execution",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EXECUTION},
                body={
                    "required": True,
                    "content": _json(
                        {
                            "type": "object",
                            "required": ["taskRunId", "state"],
                            "properties": {
                                "taskRunId": {"type": "string"},
                                "state": state_enum,
                            },
                        }
                    ),
                },
                errors=("404", "409", "422", "503"),
                operation_id="setTaskRunState",
            )
        },
        item + "/change-status": {
            "post": _op(
                "Change the final state of a finished execution",
                "Executions",
                [_EXECUTION_ID, ("status", "query", state_enum, True)],
                {"200": _EXECUTION},
                errors=("404", "409"),
                operation_id="changeExecutionStatus",
            )
        },
        item + "/eval/{taskRunId}": {
            "post": _op(
                "Evaluate an expression in the context of a task run of the execution",
                "Executions",
                [_EXECUTION_ID, ("taskRunId", "path", {"type": "string"}, True)],
                {"200": _EVAL},
                body=_TEXT_BODY,
                errors=("404",),
                operation_id="evalTaskRunExpression",
            )
        },
        item + "/eval": {
            "post": _op(
                "Evaluate an expression in the context of the execution",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EVAL},
                body=_TEXT_BODY,
                errors=("404",),
                operation_id="evalExpression",
            )
        },
        item + "/file/metas": {
            "get": _op(
                "Size, name and type of a file of an execution",
                "Executions",
                [_EXECUTION_ID, ("path", "query", {"type": "string"}, True)],
                {"200": {"description": "File metadata", "content": _json(_ref("FileMetas"))}},
                errors=("403", "404"),
                operation_id="fileMetas",
            )
        },
        item + "/file": {
            "get": _op(
                "Download a file of an execution (path=kestra:///...)",
                "Executions",
                [_EXECUTION_ID, ("path", "query", {"type": "string"}, True)],
                {"200": {"description": "The file", "content": {"*/*": {"schema": {}}}}},
                errors=("403", "404"),
                operation_id="downloadFile",
            )
        },
        item: {
            "get": _op(
                "An execution",
                "Executions",
                [_EXECUTION_ID],
                {"200": _EXECUTION},
                errors=("404",),
                operation_id="getExecution",
            ),
            "delete": _op(
                "Delete a finished execution, its logs, metrics and files",
                "Executions",
                [_EXECUTION_ID],
                {"204": {"description": "Deleted"}},
                errors=("404", "409"),
                operation_id="deleteExecution",
            ),
        },
        ex + "/{namespace}/{flowId}": {
            "post": _op(
                "Start an execution of a flow",
                "Executions",
                [
                    _NS,
                    _FLOW_ID,
                    ("wait", "query", {"type": "boolean"}, False),
                    ("labels", "query", {"type": "array", "items": {"type": "string"}}, False),
                    ("revision", "query", {"type": "integer", "minimum": 0}, False),
                ],
                {"200": _EXECUTION},
                body=_MULTIPART_OR_JSON,
                errors=("404", "409", "415", "422", "503"),
                operation_id="createExecution",
            )
        },
        fl: {
            "post": _op(
                "Create a flow from YAML",
                "Flows",
                [],
                {"200": {"description": "The flow", "content": _json(_FLOW_OBJECT)}},
                body=_YAML_BODY,
                errors=("409", "422"),
                operation_id="createFlow",
            )
        },
        fl + "/search": {
            "get": _op(
                "Search flows",
                "Flows",
                [
                    ("namespace", "query", {"type": "string"}, False),
                    ("q", "query", {"type": "string"}, False),
                    *_PAGE_PARAMS,
                ],
                {
                    "200": {
                        "description": "A page of flows",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["results", "total"],
                                "properties": {
                                    "results": {"type": "array", "items": _FLOW_OBJECT},
                                    "total": {"type": "integer"},
                                },
                            }
                        ),
                    }
                },
                operation_id="searchFlows",
            )
        },
        fl + "/validate": {
            "post": _op(
                "Validate flow documents (separated by ---) without saving them",
                "Flows",
                [],
                {
                    "200": {
                        "description": "One result per document",
                        "content": _json({"type": "array", "items": {"type": "object"}}),
                    }
                },
                body=_YAML_BODY,
                operation_id="validateFlows",
            )
        },
        flow_item + "/revisions": {
            "get": _op(
                "Every revision of a flow",
                "Flows",
                [_NS, _FLOW_ID],
                {
                    "200": {
                        "description": "Revisions, oldest first",
                        "content": _json({"type": "array", "items": {"type": "object"}}),
                    }
                },
                errors=("404",),
                operation_id="flowRevisions",
            )
        },
        flow_item: {
            "get": _op(
                "A flow",
                "Flows",
                [_NS, _FLOW_ID, ("revision", "query", {"type": "integer", "minimum": 0}, False)],
                {"200": {"description": "The flow", "content": _json(_FLOW_OBJECT)}},
                errors=("404",),
                operation_id="getFlow",
            ),
            "put": _op(
                "Update a flow from YAML (a change makes a new revision)",
                "Flows",
                [_NS, _FLOW_ID],
                {"200": {"description": "The flow", "content": _json(_FLOW_OBJECT)}},
                body=_YAML_BODY,
                errors=("404", "422"),
                operation_id="updateFlow",
            ),
            "delete": _op(
                "Delete a flow",
                "Flows",
                [_NS, _FLOW_ID],
                {"204": {"description": "Deleted"}},
                errors=("404",),
                operation_id="deleteFlow",
            ),
        },
        fl + "/{namespace}": {
            "get": _op(
                "The flows of a namespace",
                "Flows",
                [_NS],
                {
                    "200": {
                        "description": "Flows by id",
                        "content": _json({"type": "array", "items": _FLOW_OBJECT}),
                    }
                },
                operation_id="namespaceFlows",
            )
        },
        "/api/v1/logs/{executionId}/download": {
            "get": _op(
                "An execution's logs as a text file",
                "Logs",
                _LOG_PARAMS,
                {"200": {"description": "Log lines", "content": {"text/plain": {"schema": {}}}}},
                errors=("404",),
                operation_id="downloadLogs",
            )
        },
        "/api/v1/logs/{executionId}/follow": {
            "get": _op(
                "Follow an execution's logs",
                "Logs",
                [p for p in _LOG_PARAMS if p[0] != "attempt"],
                {"200": _SSE},
                errors=("404",),
                operation_id="followLogs",
            )
        },
        "/api/v1/logs/{executionId}": {
            "get": _op(
                "An execution's logs",
                "Logs",
                _LOG_PARAMS,
                {
                    "200": {
                        "description": "Log lines, in order",
                        "content": _json({"type": "array", "items": _ref("LogEntry")}),
                    }
                },
                errors=("404",),
                operation_id="executionLogs",
            )
        },
        "/api/v1/metrics/aggregates/{namespace}/{flowId}/{metric}": {
            "get": _op(
                "A metric aggregated over a flow's executions",
                "Metrics",
                [
                    _NS,
                    _FLOW_ID,
                    ("metric", "path", {"type": "string"}, True),
                    ("startDate", "query", {"type": "string", "format": "date-time"}, False),
                    ("endDate", "query", {"type": "string", "format": "date-time"}, False),
                ],
                {
                    "200": {
                        "description": "The aggregate",
                        "content": _json(_ref("MetricAggregate")),
                    }
                },
                operation_id="metricAggregate",
            )
        },
        "/api/v1/metrics/{executionId}": {
            "get": _op(
                "An execution's metrics",
                "Metrics",
                [_EXECUTION_ID, ("taskRunId", "query", {"type": "string"}, False)],
                {
                    "200": {
                        "description": "Metric entries",
                        "content": _json({"type": "array", "items": _ref("MetricEntry")}),
                    }
                },
                errors=("404",),
                operation_id="executionMetrics",
            )
        },
    }


_LOG_PARAMS: list[tuple[str, str, dict[str, Any], bool]] = [
    _EXECUTION_ID,
    (
        "minLevel",
        "query",
        {"type": "string", "enum": ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]},
        False,
    ),
    ("taskRunId", "query", {"type": "string"}, False),
    ("taskId", "query", {"type": "string"}, False),
    ("attempt", "query", {"type": "integer", "minimum": 0, "maximum": 1000000}, False),
]


def _states() -> list[Any]:
    from runtime.engine import State

    return list(State)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once)."""
    from runtime.server._executions import FileMetas

    _, components = msgspec.json.schema_components(
        [Execution, LogEntry, MetricEntry, MetricAggregate, ErrorBody, FileMetas],
        ref_template=_REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tiercel",
            "version": __version__,
            "description": "Kestra's execution API, served by tiercel server. Every "
            "operation but /health needs Authorization: Bearer <token> (or basic auth).",
        },
        "paths": _operations(),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }
