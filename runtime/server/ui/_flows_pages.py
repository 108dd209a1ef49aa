"""The flow pages: the list by namespace, a flow with its YAML editor (problems shown at
their line), its revisions, its executions, and a start form built from its inputs."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import FlowValidationError, Problem
from runtime.model import Flow
from runtime.parsing import parse_flow
from runtime.server._flows import in_namespace
from runtime.server._http import ApiError
from runtime.server._state import state_of
from runtime.server.ui._forms import fields_of
from runtime.server.ui._pages import ui_page
from runtime.server.ui._render import is_fragment, render
from runtime.server.ui._topology import topology

FLOW_TABS = ("overview", "editor", "topology", "revisions", "executions")
MAX_SOURCE_CHARS = 1_000_000
NEW_FLOW = """id: hello
namespace: company.team

inputs:
  - id: who
    type: STRING
    defaults: world

tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "Hello {{ inputs.who }}"
"""


@dataclass(frozen=True)
class SourceLine:
    """A line of YAML with the problems found on it."""

    number: int
    text: str
    problems: list[Problem]


def annotate(source: str, problems: list[Problem]) -> list[SourceLine]:
    """The lines of ``source`` that have problems, with a line of context on each side."""
    by_line: dict[int, list[Problem]] = defaultdict(list)
    for problem in problems:
        if problem.line:
            by_line[problem.line].append(problem)
    lines = source.splitlines()
    shown: set[int] = set()
    for line in by_line:
        shown.update(n for n in (line - 1, line, line + 1) if 1 <= n <= max(len(lines), 1))
    return [
        SourceLine(n, lines[n - 1] if n - 1 < len(lines) else "", by_line.get(n, []))
        for n in sorted(shown)
    ]


def _problems_of(source: str) -> tuple[Flow | None, list[Problem]]:
    if not source.strip():
        return None, [Problem(message="the flow is empty")]
    try:
        return parse_flow(source, "<editor>"), []
    except FlowValidationError as exc:
        return None, list(exc.problems)


def _flow(request: Request) -> Flow:
    state = state_of(request)
    namespace = request.path_params["namespace"]
    flow_id = request.path_params["flowId"]
    flow = state.runtime.flows.get(namespace, flow_id)
    if flow is None:
        raise ApiError(404, f"no flow {namespace}.{flow_id}")
    return flow


@ui_page
async def flows_page(request: Request) -> Response:
    """Every flow, by namespace; filter by namespace (and below) and by a text in the id."""
    state = state_of(request)
    namespace = request.query_params.get("namespace") or ""
    text = (request.query_params.get("q") or "").lower()
    by_namespace: dict[str, list[Flow]] = defaultdict(list)
    for flow in state.runtime.flows.all():
        if in_namespace(flow, namespace or None, exact=False) and text in flow.id.lower():
            by_namespace[flow.namespace].append(flow)
    groups = [(ns, sorted(flows, key=lambda f: f.id)) for ns, flows in sorted(by_namespace.items())]
    return render(
        request,
        "flows.html",
        {"groups": groups, "namespace": namespace, "q": text, "nav": "flows"},
    )


@ui_page
async def new_flow_page(request: Request) -> Response:
    """An editor for a new flow."""
    return render(
        request,
        "flow_new.html",
        {"source": NEW_FLOW, "nav": "flows"},
    )


@ui_page
async def flow_page(request: Request) -> Response:
    """A flow on one of its tabs."""
    state = state_of(request)
    tab = request.path_params.get("tab", "overview")
    if tab not in FLOW_TABS:
        raise ApiError(404, f"no tab {tab!r}; the tabs are {', '.join(FLOW_TABS)}")
    flow = _flow(request)
    context: dict[str, Any] = {
        "flow": flow,
        "tab": tab,
        "tabs": FLOW_TABS,
        "nav": "flows",
        "fields": fields_of(flow.inputs),
    }
    if tab == "topology":
        context["topology"] = topology(flow, None)
    if tab == "revisions":
        stored = await state.runtime.store.flow_revisions(flow.namespace, flow.id)
        revisions = []
        previous = ""
        for entry in stored:
            diff = "".join(
                difflib.unified_diff(
                    previous.splitlines(keepends=True),
                    entry.source.splitlines(keepends=True),
                    f"revision {entry.revision - 1}",
                    f"revision {entry.revision}",
                )
            )
            revisions.append((entry, diff))
            previous = entry.source
        context["revisions"] = list(reversed(revisions))
    return render(request, "flow.html", context)


async def validate_source(request: Request) -> Response:
    """Problems of the YAML in the editor, each at its line (nothing is saved)."""
    async with request.form(max_files=0, max_fields=5, max_part_size=MAX_SOURCE_CHARS) as form:
        source = str(form.get("source") or "")
    flow, problems = _problems_of(source)
    return render(
        request,
        "_flow_problems.html",
        {
            "flow": flow,
            "problems": problems,
            "lines": annotate(source, problems),
            "saved": None,
            "saving": False,
        },
    )


async def save_source(request: Request) -> Response:
    """Save the editor's YAML as a new flow or a new revision (problems shown instead if
    it is invalid; the flow's namespace and id must stay those of the page)."""
    state = state_of(request)
    async with request.form(max_files=0, max_fields=5, max_part_size=MAX_SOURCE_CHARS) as form:
        source = str(form.get("source") or "")
        expected = str(form.get("expected") or "")
    flow, problems = _problems_of(source)
    if flow is not None and expected and flow.uid != expected:
        problems = [
            Problem(
                message=f"this page edits {expected}; the YAML says {flow.uid} "
                "(create a new flow to change its id or namespace)",
                path="id",
                line=1,
            )
        ]
        flow = None
    if flow is not None and not expected and state.runtime.flows.get(flow.namespace, flow.id):
        problems = [Problem(message=f"flow {flow.uid} exists already; edit it instead", path="id")]
        flow = None
    saved = None
    if flow is not None:
        saved = await state.runtime.register_flow(flow)
        state.flows_changed()
    response = render(
        request,
        "_flow_problems.html",
        {
            "flow": flow,
            "problems": problems,
            "lines": annotate(source, problems),
            "saved": saved,
            "saving": True,
        },
        status=200 if saved is not None or is_fragment(request) else 422,
    )
    if saved is not None and not expected:  # a new flow: go to its own page
        response.headers["HX-Redirect"] = f"/ui/flows/{saved.namespace}/{saved.id}/editor"
    return response
