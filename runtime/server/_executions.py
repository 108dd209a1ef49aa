"""``/api/v1/executions``: create, read, search, control and follow executions."""

from __future__ import annotations

import hmac
import mimetypes
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiofiles
import anyio
import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from runtime.engine import (
    Execution,
    ExecutionEnded,
    LogEmitted,
    State,
    execution_json,
)
from runtime.errors import Problem
from runtime.model import FileInput, Flow
from runtime.model._triggers import WebhookTrigger
from runtime.server._bodies import request_inputs
from runtime.server._http import (
    ApiError,
    json_response,
    key_authenticated,
    query_bool,
    query_date,
    query_int,
    query_labels,
    raw_json_response,
    read_json,
    required_query,
)
from runtime.server._sse import SseMessage, SseResponse
from runtime.server._state import ServerState, state_of
from runtime.storage import StorageError, storage_for
from runtime.store import ExecutionQuery

MAX_PAGE_SIZE = 1000
_EVENT_ENCODER = msgspec.json.Encoder()


class Results(msgspec.Struct):
    """A page of results and the total across pages (Kestra's PagedResults)."""

    results: list[Any]
    total: int


def _execution_response(execution: Execution, status: int = 200) -> Response:
    return raw_json_response(execution_json(execution), status)


def _flow_of(state: ServerState, namespace: str, flow_id: str) -> Flow:
    flow = state.runtime.flows.get(namespace, flow_id)
    if flow is None:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    return flow


def _check_file_inputs(flow: Flow, inputs: Mapping[str, Any]) -> None:
    """A FILE input over HTTP is an upload or a ``kestra://`` URI, never a server path."""
    problems = []
    for spec in flow.inputs:
        if not isinstance(spec, FileInput) or spec.id not in inputs:
            continue
        value = inputs[spec.id]
        if isinstance(value, Path) or (isinstance(value, str) and value.startswith("kestra://")):
            continue
        problems.append(
            Problem(
                message=f"input {spec.id!r} (FILE) must be uploaded as a file "
                "(multipart/form-data) or be a kestra:// URI",
                path=f"inputs.{spec.id}",
            )
        )
    if problems:
        raise ApiError(422, "the inputs are invalid", problems)


async def _load(state: ServerState, execution_id: str) -> Execution:
    execution = await state.runtime.get_execution(execution_id)
    if execution is None:
        raise ApiError(404, f"no execution {execution_id!r}")
    return execution


async def _wait_for_end(state: ServerState, execution_id: str) -> Execution:
    """The execution once it ended, or as it is when the server starts stopping."""
    handle = await state.runtime.lookup(execution_id)
    with anyio.CancelScope() as scope:

        async def stop_on_close() -> None:
            await state.closing.wait()
            scope.cancel()

        async with anyio.create_task_group() as group:
            group.start_soon(stop_on_close)
            result = await handle.result()
            group.cancel_scope.cancel()
            return result
    return await _load(state, execution_id)


def _refuse_when_closing(state: ServerState) -> None:
    if state.closing.is_set():
        raise ApiError(
            503, "the server is stopping; try again shortly", headers={"Retry-After": "5"}
        )


# -- create ----------------------------------------------------------------------------


async def create_execution(request: Request) -> Response:
    """Start an execution of a flow with inputs (JSON or multipart); ``wait=true`` returns
    once it has ended."""
    state = state_of(request)
    _refuse_when_closing(state)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    flow = _flow_of(state, namespace, flow_id)
    if flow.disabled:
        raise ApiError(409, f"flow {namespace}.{flow_id} is disabled")
    wait = query_bool(request, "wait")
    labels = query_labels(request)
    revision = query_int(request, "revision", 0, 0, 2**31 - 1) or None
    if revision is not None and revision != flow.revision:
        found = await state.runtime._flow_for(namespace, flow_id, revision)
        if found is None:
            raise ApiError(404, f"flow {namespace}.{flow_id} has no revision {revision}")
        flow = found
    async with request_inputs(request, state.config.data / "tmp") as inputs:
        _check_file_inputs(flow, inputs)
        handle = await state.runtime.start(flow, inputs, labels=labels)
    if wait:
        return _execution_response(await _wait_for_end(state, handle.id))
    return _execution_response(handle.execution)


# -- read ------------------------------------------------------------------------------


async def get_execution(request: Request) -> Response:
    """One execution, as it is now."""
    state = state_of(request)
    return _execution_response(await _load(state, request.path_params["executionId"]))


def execution_query(request: Request) -> ExecutionQuery:
    """The filters of a search request."""
    states: list[State] = []
    for raw in request.query_params.getlist("state"):
        try:
            states.append(State(raw.upper()))
        except ValueError:
            known = ", ".join(s.value for s in State)
            raise ApiError(400, f"unknown state {raw!r}; expected one of {known}") from None
    return ExecutionQuery(
        namespace=request.query_params.get("namespace") or None,
        flow_id=request.query_params.get("flowId") or None,
        states=states or None,
        labels=query_labels(request),
        started_after=query_date(request, "startDate"),
        started_before=query_date(request, "endDate"),
        page=query_int(request, "page", 1, 1, 1_000_000),
        size=query_int(request, "size", 25, 1, MAX_PAGE_SIZE),
    )


async def search_executions(request: Request) -> Response:
    """Executions matching filters, newest first, a page at a time."""
    state = state_of(request)
    page = await state.runtime.store.search(execution_query(request))
    body = b'{"results":[' + b",".join(execution_json(e) for e in page.items) + b"],"
    body += b'"total":' + str(page.total).encode() + b"}"
    return raw_json_response(body)


# -- control ---------------------------------------------------------------------------


async def delete_execution(request: Request) -> Response:
    """Delete a finished execution with its logs, metrics and files."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _load(state, execution_id)
    await state.runtime.delete_execution(execution_id)
    return Response(status_code=204)


async def kill_execution(request: Request) -> Response:
    """Kill an execution and the subflow executions it waits for (KILLING, then KILLED)."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _load(state, execution_id)
    await state.runtime.kill(execution_id)
    return _execution_response(await _load(state, execution_id), 202)


async def pause_execution(request: Request) -> Response:
    """Pause a running execution: running task runs finish, nothing new starts."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    await _load(state, execution_id)
    await state.runtime.pause(execution_id)
    return _execution_response(await _load(state, execution_id))


async def resume_execution(request: Request) -> Response:
    """Resume a paused execution, with the Pause task's ``onResume`` inputs."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    execution = await _load(state, execution_id)
    flow = await state.runtime._flow_for(
        execution.namespace, execution.flow_id, execution.flow_revision
    )
    async with request_inputs(request, state.config.data / "tmp") as inputs:
        if flow is not None:
            _check_file_inputs(flow, inputs)
        await state.runtime.resume(execution_id, inputs)
    return _execution_response(await _load(state, execution_id))


async def restart_execution(request: Request) -> Response:
    """Restart a failed, killed or warning execution in place."""
    state = state_of(request)
    _refuse_when_closing(state)
    execution_id = request.path_params["executionId"]
    await _load(state, execution_id)
    return _execution_response(await state.runtime.restart(execution_id))


async def replay_execution(request: Request) -> Response:
    """A new execution that runs again from a task run (``taskRunId``) on."""
    state = state_of(request)
    _refuse_when_closing(state)
    execution_id = request.path_params["executionId"]
    task_run_id = required_query(request, "taskRunId")
    await _load(state, execution_id)
    handle = await state.runtime.replay(execution_id, task_run_id)
    assert handle.snapshot is not None
    return _execution_response(handle.snapshot)


class StateRequest(msgspec.Struct, rename="camel"):
    """The body of a task run state change."""

    task_run_id: str
    state: State


async def set_task_run_state(request: Request) -> Response:
    """Change the state of a task run of a finished execution; the execution re-decides."""
    state = state_of(request)
    _refuse_when_closing(state)
    execution_id = request.path_params["executionId"]
    try:
        body = msgspec.convert(await read_json(request), StateRequest)
    except msgspec.ValidationError as exc:
        raise ApiError(422, f"invalid body: {exc}") from None
    await _load(state, execution_id)
    changed = await state.runtime.set_task_run_state(execution_id, body.task_run_id, body.state)
    return _execution_response(changed)


async def change_status(request: Request) -> Response:
    """Change the final state of a finished execution (``status``)."""
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    raw = required_query(request, "status")
    try:
        status = State(raw.upper())
    except ValueError:
        raise ApiError(400, f"unknown state {raw!r}") from None
    await _load(state, execution_id)
    return _execution_response(await state.runtime.change_status(execution_id, status))


# -- follow ----------------------------------------------------------------------------


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if not raw:
        return 0
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(
            400, f"Last-Event-ID must be an event sequence number, not {raw!r}"
        ) from None


async def follow_execution(request: Request) -> Response:
    """Every event of an execution as server-sent events (``id`` is the event's sequence
    number: reconnect with Last-Event-ID to resume), until it ends.

    With ``view=execution``, Kestra's shape instead: the execution document after each
    change (event ``progress``), and a last one (event ``end``).
    """
    state = state_of(request)
    execution_id = request.path_params["executionId"]
    after = _last_event_id(request)
    view = request.query_params.get("view", "events")
    if view not in ("events", "execution"):
        raise ApiError(400, f"view must be events or execution, not {view!r}")
    await state.runtime.lookup(execution_id)  # 404 before the stream starts

    async def event_messages() -> AsyncIterator[SseMessage]:
        async for event in state.runtime.follow(execution_id, after):
            yield SseMessage(_EVENT_ENCODER.encode(event), type(event).__name__, str(event.seq))

    async def document_messages() -> AsyncIterator[SseMessage]:
        runtime = state.runtime
        execution = await runtime.get_execution(execution_id)
        if execution is not None and after == 0:
            yield SseMessage(execution_json(execution), "progress", "0")
        async for event in runtime.follow(execution_id, after):
            if isinstance(event, LogEmitted):
                continue  # logs do not change the document
            execution = await runtime.get_execution(execution_id)
            if execution is None:
                return
            ended = isinstance(event, ExecutionEnded) and execution.state.current.terminal
            yield SseMessage(
                execution_json(execution), "end" if ended else "progress", str(event.seq)
            )

    source = event_messages() if view == "events" else document_messages()
    return SseResponse(source, state.closing)  # type: ignore[return-value]


# -- files -----------------------------------------------------------------------------


def _execution_file(state: ServerState, execution: Execution, uri: str) -> Path:
    storage = storage_for(state.config.data)
    path = storage.resolve(uri)
    folder = storage.execution_dir(execution.namespace, execution.flow_id, execution.id)
    if folder not in path.parents:
        raise ApiError(403, f"{uri} is not a file of execution {execution.id}")
    if not path.is_file():
        raise ApiError(404, f"no file at {uri}")
    return path


class FileMetas(msgspec.Struct):
    """What is known of a stored file without reading it."""

    size: int
    name: str
    contentType: str  # noqa: N815 - JSON field name


async def get_file(request: Request) -> Response:
    """Download a file of an execution's outputs or inputs (``path=kestra:///...``)."""
    state = state_of(request)
    execution = await _load(state, request.path_params["executionId"])
    path = _execution_file(state, execution, required_query(request, "path"))

    async def chunks() -> AsyncIterator[bytes]:
        async with aiofiles.open(path, "rb") as reader:
            while chunk := await reader.read(256 * 1024):
                yield chunk

    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name)}",
            "Content-Length": str(path.stat().st_size),
        },
    )


async def get_file_metas(request: Request) -> Response:
    """Size, name and type of a file of an execution."""
    state = state_of(request)
    execution = await _load(state, request.path_params["executionId"])
    path = _execution_file(state, execution, required_query(request, "path"))
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return json_response(
        FileMetas(size=path.stat().st_size, name=path.name, contentType=media_type)
    )


# -- expressions -----------------------------------------------------------------------


class EvalResult(msgspec.Struct):
    """The value of an expression, or why it has none."""

    result: Any
    error: str | None


async def evaluation(
    state: ServerState, execution: Execution, expression: str, task_run_id: str | None
) -> EvalResult:
    """The value of ``expression`` in ``execution`` (in a task run's context when given),
    rendered as the engine renders task properties; what goes wrong is the ``error``."""
    from runtime.engine._evaluate import MAX_EXPRESSION_CHARS, evaluate_in_execution
    from runtime.expressions import ExpressionError

    runtime = state.runtime
    if not expression.strip():
        return EvalResult(None, "write an expression, such as {{ outputs.first.value }}")
    if len(expression) > MAX_EXPRESSION_CHARS:
        return EvalResult(None, f"the expression is over {MAX_EXPRESSION_CHARS} characters")
    if task_run_id is not None and all(t.id != task_run_id for t in execution.task_run_list):
        return EvalResult(None, f"no task run {task_run_id!r} in this execution")
    flow = await runtime._flow_for(execution.namespace, execution.flow_id, execution.flow_revision)
    if flow is None:
        return EvalResult(None, f"flow {execution.namespace}.{execution.flow_id} is gone")
    try:
        # In the event loop, not a thread: the document may be changing (the engine's
        # own limits bound the time an expression takes).
        value = evaluate_in_execution(
            runtime.expressions,
            runtime.clock,
            runtime.data_dir,
            flow,
            execution,
            expression,
            envs=runtime.services.envs,
            task_run_id=task_run_id,
        )
    except ExpressionError as exc:
        return EvalResult(None, str(exc))
    return EvalResult(value, None)


async def evaluate_expression(request: Request) -> Response:
    """The value of the expression in the body, in this execution (in the context of the
    task run ``taskRunId`` when given)."""
    state = state_of(request)
    execution = await _load(state, request.path_params["executionId"])
    task_run_id = request.path_params.get("taskRunId")
    if task_run_id is not None and all(t.id != task_run_id for t in execution.task_run_list):
        raise ApiError(404, f"no task run {task_run_id!r} in execution {execution.id}")
    expression = (await request.body()).decode("utf-8", errors="replace")
    return json_response(await evaluation(state, execution, expression, task_run_id))


# -- webhooks --------------------------------------------------------------------------


@key_authenticated
async def webhook(request: Request) -> Response:
    """Start a flow from its Webhook trigger; the key in the URL is the credential."""
    state = state_of(request)
    _refuse_when_closing(state)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    key = request.path_params["key"]
    flow = state.runtime.flows.get(namespace, flow_id)
    trigger = None
    if flow is not None and not flow.disabled:
        for candidate in flow.triggers:
            if (
                isinstance(candidate, WebhookTrigger)
                and not candidate.disabled
                and hmac.compare_digest(candidate.key.encode(), key.encode())
            ):
                trigger = candidate
    if flow is None or trigger is None:
        # Same answer for an unknown flow and a wrong key: the key is the secret.
        raise ApiError(
            401,
            "no webhook trigger with this key",
            headers={"WWW-Authenticate": 'Bearer realm="tiercel"'},
        )
    raw = await request.body()
    body: Any = None
    if raw:
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = raw.decode("utf-8", errors="replace")
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "cookie"):
            continue  # secrets of the caller never reach flow variables
        headers.setdefault(name, []).append(value)
    parameters: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        parameters.setdefault(name, []).append(value)
    variables = {"body": body, "headers": headers, "parameters": parameters}
    if trigger.conditions and not _conditions_hold(state, flow, trigger.conditions, variables):
        # Kestra answers 404 when a webhook's conditions do not hold: nothing started.
        raise ApiError(404, "the webhook's conditions do not hold: no execution started")
    handle = await state.runtime.start(
        flow,
        trigger.inputs or {},
        labels=trigger.label_map(),
        trigger={"id": trigger.id, "type": trigger.type, "variables": variables},
    )
    return _execution_response(handle.execution)


def _conditions_hold(
    state: ServerState, flow: Flow, conditions: list[Any], variables: dict[str, Any]
) -> bool:
    from runtime.scheduling import ConditionContext, ConditionError, holds

    context = ConditionContext(
        expressions=state.runtime.expressions,
        variables={"trigger": variables, "flow": {"id": flow.id, "namespace": flow.namespace}},
    )
    try:
        return all(holds(condition, context) for condition in conditions)
    except ConditionError as exc:
        raise ApiError(422, f"a condition of the webhook cannot be evaluated: {exc}") from None


def routes() -> list[Route]:
    """The execution routes, under ``/api/v1/executions``."""
    base = "/api/v1/executions"
    item = base + "/{executionId}"
    return [
        Route(base + "/search", search_executions, methods=["GET"]),
        Route(
            base + "/webhook/{namespace}/{flowId}/{key}",
            webhook,
            methods=["GET", "POST", "PUT"],
        ),
        Route(item + "/follow", follow_execution, methods=["GET"]),
        Route(item + "/kill", kill_execution, methods=["DELETE"]),
        Route(item + "/pause", pause_execution, methods=["POST"]),
        Route(item + "/resume", resume_execution, methods=["POST"]),
        Route(item + "/restart", restart_execution, methods=["POST"]),
        Route(item + "/replay", replay_execution, methods=["POST"]),
        Route(item + "/state", set_task_run_state, methods=["POST"]),
        Route(item + "/change-status", change_status, methods=["POST"]),
        Route(item + "/eval/{taskRunId}", evaluate_expression, methods=["POST"]),
        Route(item + "/eval", evaluate_expression, methods=["POST"]),
        Route(item + "/file/metas", get_file_metas, methods=["GET"]),
        Route(item + "/file", get_file, methods=["GET"]),
        Route(item, get_execution, methods=["GET"]),
        Route(item, delete_execution, methods=["DELETE"]),
        Route(base + "/{namespace}/{flowId}", create_execution, methods=["POST"]),
    ]


__all__ = ("Results", "StorageError", "execution_query", "routes")
