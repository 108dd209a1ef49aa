"""The web UI, served by ``tiercel server`` under ``/ui``: server-rendered pages (Jinja2)
made live with htmx and the API's server-sent events. Every script and style ships in
this package; nothing is fetched from the network."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from runtime.server.ui._execution_page import evaluate, execution_page, file_preview
from runtime.server.ui._executions_list import bulk_action, executions_page, executions_table
from runtime.server.ui._flows_pages import (
    flow_page,
    flows_page,
    new_flow_page,
    save_source,
    validate_source,
)
from runtime.server.ui._login import login, login_page, logout, static_file
from runtime.server.ui._pages import ui_page


@ui_page
async def home(request: Request) -> Response:
    """``/ui``: the executions list."""
    return RedirectResponse("/ui/executions", status_code=303)


def routes() -> list[Route]:
    """The UI's routes, under ``/ui``."""
    return [
        Route("/ui", home, methods=["GET"]),
        Route("/ui/", home, methods=["GET"]),
        Route("/ui/login", login_page, methods=["GET"]),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/static/{name}", static_file, methods=["GET"]),
        Route("/ui/executions", executions_page, methods=["GET"]),
        Route("/ui/executions/table", executions_table, methods=["GET"]),
        Route("/ui/executions/bulk", bulk_action, methods=["POST"]),
        Route("/ui/executions/{executionId}/preview", file_preview, methods=["GET"]),
        Route("/ui/executions/{executionId}/eval", evaluate, methods=["POST"]),
        Route("/ui/executions/{executionId}", execution_page, methods=["GET"]),
        Route("/ui/executions/{executionId}/{tab}", execution_page, methods=["GET"]),
        Route("/ui/flows", flows_page, methods=["GET"]),
        Route("/ui/flows/new", new_flow_page, methods=["GET"]),
        Route("/ui/flows/validate", validate_source, methods=["POST"]),
        Route("/ui/flows/save", save_source, methods=["POST"]),
        Route("/ui/flows/{namespace}/{flowId}", flow_page, methods=["GET"]),
        Route("/ui/flows/{namespace}/{flowId}/{tab}", flow_page, methods=["GET"]),
    ]
