"""The web UI over plain HTTP: sessions, the anti-forgery token, where a login may send a
browser, static files, error pages, the expression box and file previews."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from runtime.server._session import COOKIE, SESSION_SECONDS, SessionKeys
from tests.server_process import ServerProcess, running_server

FLOW = """
id: looped
namespace: ui.http
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "item {{ taskrun.value }}"
  - id: files
    type: io.kestra.plugin.scripts.shell.Commands
    outputFiles: ["data.json"]
    commands:
      - >-
        echo '{"b": [1, 2], "a": true}' > data.json
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ui-http")
    flows = root / "flows"
    flows.mkdir()
    (flows / "looped.yaml").write_text(FLOW)
    with running_server(root / "data", "--flows", str(flows)) as started:
        yield started


@pytest.fixture(scope="module")
def execution(server: ServerProcess) -> dict[str, object]:
    with server.client() as client:
        response = client.post("/api/v1/executions/ui.http/looped?wait=true")
    assert response.status_code == 200, response.text
    assert response.json()["state"]["current"] == "SUCCESS", response.text
    result: dict[str, object] = response.json()
    return result


def browser(server: ServerProcess) -> httpx.Client:
    """A client with no credentials, as a browser before it logs in."""
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


@contextmanager
def logged_in(server: ServerProcess) -> Iterator[tuple[httpx.Client, str]]:
    """A client holding a session cookie, and the anti-forgery token of its pages."""
    with browser(server) as client:
        response = client.post("/ui/login", data={"token": server.token, "next": "/ui/flows"})
        assert response.status_code == 303
        page = client.get("/ui/executions")
        found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
        assert found is not None, page.text
        yield client, found.group(1)


# -- sessions --------------------------------------------------------------------------


def test_a_session_cookie_is_valid_only_with_the_same_secrets_and_until_it_expires() -> None:
    keys = SessionKeys([b"token-1"])
    cookie = keys.issue(now=1_000_000)
    assert keys.valid(cookie, now=1_000_000 + SESSION_SECONDS - 1)
    assert not keys.valid(cookie, now=1_000_000 + SESSION_SECONDS + 1)
    assert not SessionKeys([b"token-2"]).valid(cookie, now=1_000_000)
    assert SessionKeys([b"token-1"]).valid(cookie, now=1_000_000)  # a restart keeps it
    expires, nonce, mac = cookie.split(".")
    assert not keys.valid(f"{int(expires) + 999}.{nonce}.{mac}", now=1_000_000)
    assert not keys.valid("garbage", now=1_000_000)
    assert not keys.valid(None)


def test_the_anti_forgery_token_belongs_to_its_session() -> None:
    keys = SessionKeys([b"token-1"])
    first, second = keys.issue(), keys.issue()
    assert keys.csrf_valid(first, keys.csrf_token(first))
    assert not keys.csrf_valid(first, keys.csrf_token(second))
    assert not keys.csrf_valid(first, None)
    assert not keys.csrf_valid(first, "")


def test_pages_without_a_session_send_the_browser_to_the_login_page(
    server: ServerProcess,
) -> None:
    with browser(server) as client:
        response = client.get("/ui/executions?state=FAILED")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=%2Fui%2Fexecutions%3Fstate%3DFAILED"
        # The API still answers 401 JSON, and UI actions are not pages: 401 too.
        assert client.get("/api/v1/executions/search").status_code == 401
        assert client.post("/ui/executions/bulk", data={"action": "kill"}).status_code == 401
        assert client.get("/ui/login").status_code == 200


def test_a_login_sets_a_strict_http_only_cookie_and_refuses_a_wrong_token(
    server: ServerProcess,
) -> None:
    with browser(server) as client:
        refused = client.post("/ui/login", data={"token": "wrong", "next": "/ui/flows"})
        assert refused.status_code == 401
        assert COOKIE not in refused.cookies
        assert "not accepted" in refused.text
        accepted = client.post("/ui/login", data={"token": server.token, "next": "/ui/flows"})
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/ui/flows"
        cookie = accepted.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert client.get("/ui/flows").status_code == 200


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/ui/x", "/api/v1/flows", "javascript:alert(1)"],
)
def test_a_login_never_sends_the_browser_off_the_ui(server: ServerProcess, target: str) -> None:
    with browser(server) as client:
        response = client.post("/ui/login", data={"token": server.token, "next": target})
    assert response.headers["location"] == "/ui/executions"


def test_changes_through_the_cookie_need_the_anti_forgery_token(
    server: ServerProcess, execution: dict[str, object]
) -> None:
    with logged_in(server) as (client, csrf):
        assert client.get("/api/v1/executions/search").status_code == 200
        path = f"/api/v1/executions/{execution['id']}/restart"
        forged = client.post(path)
        assert forged.status_code == 403
        assert "anti-forgery" in forged.json()["message"]
        wrong = client.post(path, headers={"x-tiercel-csrf": "0" * 40})
        assert wrong.status_code == 403
        evaluated = client.post(
            f"/ui/executions/{execution['id']}/eval",
            data={"expression": "{{ 1 + 1 }}"},
            headers={"x-tiercel-csrf": csrf},
        )
        assert evaluated.status_code == 200
        assert "<pre data-eval-result>2</pre>" in evaluated.text


def test_a_bearer_token_opens_pages_too(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.get("/ui/flows")
    assert response.status_code == 200
    assert "looped" in response.text


def test_logging_out_ends_the_session(server: ServerProcess) -> None:
    with logged_in(server) as (client, csrf):
        response = client.post("/ui/logout", headers={"x-tiercel-csrf": csrf})
        assert response.headers["HX-Redirect"] == "/ui/login"
        assert client.get("/ui/flows").status_code == 303


# -- static files and errors -----------------------------------------------------------


def test_static_files_ship_in_the_package_and_nothing_else_is_served(
    server: ServerProcess,
) -> None:
    with browser(server) as client:
        script = client.get("/ui/static/htmx.min.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert client.get("/ui/static/tiercel.css").status_code == 200
        for probe in ("..%2F_render.py", "%2e%2e%2f__init__.py", "missing.js", ".hidden"):
            assert client.get(f"/ui/static/{probe}").status_code in (401, 404), probe


def test_pages_load_nothing_from_the_network(server: ServerProcess) -> None:
    with logged_in(server) as (client, _):
        for path in ("/ui/executions", "/ui/flows", "/ui/flows/ui.http/looped/editor"):
            html = client.get(path).text
            sources = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert sources, path
            assert all(not s.startswith(("http:", "https:", "//")) for s in sources), sources


def test_an_unknown_execution_is_a_404_page(server: ServerProcess) -> None:
    with logged_in(server) as (client, _):
        response = client.get("/ui/executions/no-such-id")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "no execution &#39;no-such-id&#39;" in response.text
        assert client.get("/ui/executions/no-such-id/nowhere").status_code == 404


def test_a_bad_filter_is_explained_above_the_list(server: ServerProcess) -> None:
    with logged_in(server) as (client, _):
        response = client.get("/ui/executions?state=DONE")
    assert response.status_code == 200
    assert "unknown state &#39;DONE&#39;" in response.text


def test_bulk_actions_say_what_happened_to_each(
    server: ServerProcess, execution: dict[str, object]
) -> None:
    with logged_in(server) as (client, csrf):
        headers = {"x-tiercel-csrf": csrf}
        unknown = client.post("/ui/executions/bulk", data={"action": "nuke"}, headers=headers)
        assert unknown.status_code == 400
        response = client.post(
            "/ui/executions/bulk",
            data={"action": "kill", "ids": [str(execution["id"]), "missing"]},
            headers=headers,
        )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "executions-changed"
    assert "0 killed; 2 refused" in response.text


# -- outputs ---------------------------------------------------------------------------


def test_the_expression_box_evaluates_in_a_task_runs_context(
    server: ServerProcess, execution: dict[str, object]
) -> None:
    runs = {
        (t["taskId"], t.get("value")): t["id"]
        for t in execution["taskRunList"]  # type: ignore[attr-defined]
    }
    url = f"/ui/executions/{execution['id']}/eval"
    with logged_in(server) as (client, csrf):
        headers = {"x-tiercel-csrf": csrf}

        def evaluate(expression: str, task_run: str = "") -> str:
            form = {"expression": expression, "taskRunId": task_run}
            return client.post(url, data=form, headers=headers).text

        assert "item b" in evaluate("{{ outputs.item['b'].value }}")
        assert ">b</pre>" in evaluate("{{ taskrun.value }}", runs[("item", "b")])
        assert "[\n  1,\n  2\n]" in evaluate(
            "fromJson(read(outputs.files.outputFiles['data.json'])).b"
        )
        assert "Unable to find `taskrun`" in evaluate("{{ taskrun.value }}")
        assert "no task run" in evaluate("{{ 1 }}", "nope")
        assert "write an expression" in evaluate("  ")
        assert "over 10000 characters" in evaluate("{{ 1 }}" + " " * 10_000)


def test_a_file_preview_stays_inside_its_execution(
    server: ServerProcess, execution: dict[str, object]
) -> None:
    files = next(
        t
        for t in execution["taskRunList"]  # type: ignore[attr-defined]
        if t["taskId"] == "files"
    )
    uri = files["outputs"]["outputFiles"]["data.json"]
    with logged_in(server) as (client, _):
        preview = client.get(f"/ui/executions/{execution['id']}/preview", params={"path": uri})
        assert preview.status_code == 200
        assert 'data-preview="json"' in preview.text
        assert "&#34;b&#34;: [\n    1," in preview.text
        outside = uri.replace(str(execution["id"]), "another-execution")
        response = client.get(f"/ui/executions/{execution['id']}/preview", params={"path": outside})
        assert response.status_code in (403, 404)
        escape = client.get(
            f"/ui/executions/{execution['id']}/preview",
            params={"path": "kestra:///../../api-token"},
        )
        assert escape.status_code in (400, 403)


def test_without_authentication_the_ui_opens_directly(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    with running_server(tmp_path / "data", "--no-auth") as open_server, browser(open_server) as c:
        assert c.get("/ui/executions").status_code == 200
        login = c.get("/ui/login?next=/ui/flows")
        assert login.status_code == 303
        assert login.headers["location"] == "/ui/flows"
