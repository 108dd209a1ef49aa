"""The ASGI application: routes, and the guards in front of them."""

from __future__ import annotations

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime._version import __version__
from runtime.server import _executions, _flows, _observability, ui
from runtime.server._errors import ErrorMiddleware, http_exception_handler
from runtime.server._guard import AuthMiddleware, BodyLimitMiddleware, Credentials
from runtime.server._http import json_response, public
from runtime.server._openapi import openapi_document
from runtime.server._state import ServerState, state_of

log = structlog.get_logger("tiercel.server")


@public
async def health(request: Request) -> Response:
    """Whether the server is up (no credentials needed)."""
    state = state_of(request)
    status = "STOPPING" if state.closing.is_set() else "UP"
    return json_response({"status": status, "version": __version__}, 503 if status != "UP" else 200)


async def prometheus(request: Request) -> Response:
    """Prometheus metrics."""
    return PlainTextResponse(
        state_of(request).metrics.render(), media_type="text/plain; version=0.0.4"
    )


async def openapi(request: Request) -> Response:
    """This API's OpenAPI 3.1 document."""
    return json_response(openapi_document())


def api_routes() -> list[BaseRoute]:
    """The routes of the API (what the OpenAPI document describes)."""
    return [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        *_executions.routes(),
        *_flows.routes(),
        *_observability.routes(),
    ]


def all_routes() -> list[BaseRoute]:
    """Every route the server answers: the API and the web UI's pages."""
    return [*api_routes(), *ui.routes()]


class RequestLogMiddleware:
    """Counts requests by route template and status, and logs them at debug level."""

    def __init__(self, app: ASGIApp, state: ServerState, routes: list[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = "unmatched"
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match.name == "FULL":
                    route = getattr(candidate, "path", "unmatched")
                    break
            self.state.metrics.request_done(scope["method"], route, status)
            log.debug("request", method=scope["method"], route=route, status=status)


def create_app(state: ServerState, credentials: Credentials | None) -> Starlette:
    """The application for one daemon; ``credentials`` None turns authentication off."""
    routes = all_routes()
    config = state.config
    middleware = []
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=config.cors_origins,
                allow_methods=["GET", "POST", "PUT", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            )
        )
    middleware += [
        Middleware(RequestLogMiddleware, state=state, routes=routes),
        Middleware(ErrorMiddleware),
        Middleware(
            BodyLimitMiddleware,
            max_body_bytes=config.max_body_bytes,
            max_upload_bytes=config.max_upload_bytes,
        ),
        Middleware(AuthMiddleware, routes=routes, credentials=credentials),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_exception_handler},
    )
    app.router.redirect_slashes = False  # "/health/" is not "/health"
    app.state.tiercel = state
    app.state.credentials = credentials
    return app
