"""The web UI in a real headless Chromium against a real ``tiercel server``: log in, start a
flow from its form, watch the Gantt fill in, read outputs, files and metrics, resume a
paused execution from its form, kill a running one, filter and act on the list, edit a
flow. Each page visited is saved as a screenshot (``build/ui-screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import SCREENSHOTS, chromium
from tests.server_process import ServerProcess, running_server

pytestmark = pytest.mark.slow

ORDERS = """
id: orders
namespace: ui.test
description: Reads an uploaded file and reports on it.
inputs:
  - id: customer
    type: STRING
  - id: quantity
    type: INT
    min: 1
    defaults: 2
  - id: priority
    type: SELECT
    values: [low, high]
    defaults: low
  - id: data
    type: FILE
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "order for {{ inputs.customer }} x{{ inputs.quantity }} ({{ inputs.priority }})"
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: ["a", "b"]
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "item {{ taskrun.value }}"
  - id: report
    type: io.kestra.plugin.scripts.shell.Commands
    inputFiles:
      data.txt: "{{ inputs.data }}"
    outputFiles: ["report.csv"]
    commands:
      - sleep 3
      - printf 'line,text\\n' > report.csv
      - awk '{ print NR "," $0 }' data.txt >> report.csv
      - echo "::{\\"outputs\\":{\\"lines\\":$(wc -l < data.txt)},\\"metrics\\":[{\\"name\\":\\"rows\\",\\"type\\":\\"counter\\",\\"value\\":$(wc -l < data.txt),\\"tags\\":{\\"source\\":\\"upload\\"}}]}::"
"""

APPROVAL = """
id: approval
namespace: ui.test
tasks:
  - id: ask
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
      - id: reason
        type: STRING
      - id: amount
        type: INT
        min: 1
  - id: after
    type: io.kestra.plugin.core.debug.Return
    format: "{{ outputs.ask.onResume.reason }} / {{ outputs.ask.onResume.amount }}"
"""

EDITED = """id: edited
namespace: ui.test
inputs:
  - id: who
    type: STRING
    defaults: you
tasks:
  - id: greet
    type: io.kestra.plugin.core.debug.Return
    format: "hello {{ inputs.who }}"
"""

SLOW = """
id: slow
namespace: ui.other
tasks:
  - id: nap
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo started
      - sleep 2
      - echo still going
      - sleep 300
"""

BROKEN = """
id: broken
namespace: ui.other
tasks:
  - id: first
    type: io.kestra.plugin.core.debug.Return
    format: one
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: on purpose
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ui")
    flows = root / "flows"
    flows.mkdir()
    flows_by_name = {"orders": ORDERS, "approval": APPROVAL, "slow": SLOW, "broken": BROKEN}
    for name, text in flows_by_name.items():
        (flows / f"{name}.yaml").write_text(text)
    with running_server(root / "data", "--flows", str(flows)) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as started:
        yield started


@pytest.fixture
def page(browser: Browser, server: ServerProcess) -> Iterator[Page]:
    """A page of a fresh browser context, logged in with the server's token."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server.url + "/ui/executions")
    expect(opened).to_have_url(re.compile(r"/ui/login\?next="))
    opened.fill("input[name=token]", server.token)
    opened.click("button[type=submit]")
    expect(opened).to_have_url(re.compile(r"/ui/executions$"))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shoot(page: Page, name: str) -> None:
    """Save a screenshot of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def mark_page(page: Page) -> None:
    """Mark the loaded document: a later :func:`same_page` fails if it was reloaded."""
    page.evaluate("window.tiercelTestMark = true")


def same_page(page: Page) -> bool:
    """Whether the document marked by :func:`mark_page` is still the one shown."""
    return bool(page.evaluate("window.tiercelTestMark === true"))


def start_from_api(server: ServerProcess, namespace: str, flow: str, **inputs: object) -> str:
    with server.client() as client:
        response = client.post(f"/api/v1/executions/{namespace}/{flow}", json=inputs)
        assert response.status_code == 200, response.text
        return str(response.json()["id"])


def execution_state(server: ServerProcess, execution_id: str) -> str:
    with server.client() as client:
        return str(client.get(f"/api/v1/executions/{execution_id}").json()["state"]["current"])


def test_the_ui_asks_for_the_token_once_and_refuses_a_wrong_one(
    browser: Browser, server: ServerProcess
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/ui/flows")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fflows"))
    shoot(page, "login")
    page.fill("input[name=token]", "not-the-token")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.fill("input[name=token]", server.token)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/ui/flows$"))
    expect(page.locator("tr[data-flow='ui.test.orders']")).to_be_visible()
    shoot(page, "flows")
    # The session lets the page call the API (same cookie), but not without its token.
    status = page.evaluate("fetch('/api/v1/executions/search').then(r => r.status)")
    assert status == 200
    forged = page.evaluate(
        "fetch('/api/v1/flows/ui.test/orders', {method: 'DELETE'}).then(r => r.status)"
    )
    assert forged == 403
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.goto(server.url + "/ui/executions")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    context.close()


def test_start_a_flow_from_its_form_and_follow_it_to_its_outputs_and_metrics(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    upload = tmp_path / "customers.txt"
    upload.write_text("alice\nbob\ncarol\n")
    page.goto(server.url + "/ui/flows/ui.test/orders")
    shoot(page, "flow-start-form")
    form = page.locator("#start-form")
    # The form is generated from the inputs: a required text, a bounded number with its
    # default, a select, a file.
    expect(form.locator("input[name=quantity]")).to_have_value("2")
    expect(form.locator("input[name=quantity]")).to_have_attribute("min", "1")
    expect(form.locator("select[name=priority] option")).to_have_text(["low", "high"])
    form.locator("input[name=customer]").fill("ACME")
    form.locator("select[name=priority]").select_option("high")
    form.locator("input[name=data]").set_input_files(str(upload))
    form.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(r"/ui/executions/[\w-]+$"))
    execution_id = page.url.rsplit("/", 1)[1]

    page.get_by_role("link", name="Gantt").click()
    expect(page).to_have_url(re.compile(r"/gantt$"))
    mark_page(page)
    rows = page.locator(".gantt .g-row[data-task-run]")
    # While the script sleeps, the Gantt already shows the task runs that ran, and the
    # script's bar is running; it fills in live (no reload) until every row succeeded.
    expect(page.locator(".g-row[data-task='report'] .bar")).to_have_attribute(
        "data-attempt-state", "RUNNING"
    )
    shoot(page, "gantt-running")
    expect(page.locator("header[data-execution-state]")).to_have_attribute(
        "data-execution-state", "SUCCESS", timeout=30_000
    )
    expect(rows).to_have_count(5)
    expect(page.locator(".g-row[data-task='item'] [data-loop-value]")).to_have_text(["[a]", "[b]"])
    for state in rows.evaluate_all("rows => rows.map(r => r.dataset.state)"):
        assert state == "SUCCESS"
    assert same_page(page), "the Gantt was reloaded instead of updated in place"
    shoot(page, "gantt-done")
    for width, height, name in ((1280, 720, "gantt-laptop"), (1920, 1080, "gantt-wide")):
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling at {width}px"
        shoot(page, name)
    page.set_viewport_size({"width": 1440, "height": 900})

    page.get_by_role("link", name="Overview").click()
    expect(page.locator("[data-history] .state")).to_have_text(["CREATED", "RUNNING", "SUCCESS"])
    shoot(page, "overview")

    page.get_by_role("link", name="Outputs").click()
    report = page.locator("[data-outputs-of='report']")
    expect(report.locator("li[data-key='lines'] [data-output-value]")).to_have_text("3")
    with page.expect_download() as download_info:
        report.locator("[data-file-download]").click()
    downloaded = Path(download_info.value.path())
    assert downloaded.read_text() == "line,text\n1,alice\n2,bob\n3,carol\n"
    report.locator("[data-file-preview]").click()
    preview = report.locator("[data-preview='csv']")
    expect(preview.locator("tr").first).to_contain_text("line")
    expect(preview.locator("tr")).to_have_count(4)
    page.fill("#expression", "{{ outputs.item['b'].value | upper }}")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("[data-eval-result]")).to_have_text("ITEM B")
    page.fill("#expression", "outputs.nothing.here")
    page.get_by_role("button", name="Evaluate").click()
    expect(page.locator("[data-eval-error]")).to_contain_text("nothing")
    shoot(page, "outputs")

    page.get_by_role("link", name="Metrics").click()
    metric = page.locator("tr[data-metric='rows']")
    expect(metric.locator("[data-metric-value]")).to_have_text("3")
    expect(metric).to_contain_text("source:upload")
    shoot(page, "metrics")

    page.get_by_role("link", name="Logs").click()
    expect(page.locator("#log-lines")).to_contain_text("order for ACME x2 (high)")
    shoot(page, "logs")

    page.get_by_role("link", name="Topology").click()
    expect(page.locator(".t-node[data-task='report']")).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator(".t-group[data-task='each'] .t-node[data-task='item']")).to_contain_text(
        "2 SUCCESS"
    )
    shoot(page, "topology")
    assert execution_state(server, execution_id) == "SUCCESS"


def test_a_bad_input_is_shown_at_its_field_and_starts_nothing(
    page: Page, server: ServerProcess, tmp_path: Path
) -> None:
    upload = tmp_path / "one.txt"
    upload.write_text("x\n")
    with server.client() as client:
        before = client.get("/api/v1/executions/search", params={"flowId": "orders"}).json()
    page.goto(server.url + "/ui/flows/ui.test/orders")
    form = page.locator("#start-form")
    form.locator("input[name=customer]").fill("ACME")
    # The browser's own check would stop 0 (min 1); take it off to see the server's answer.
    form.locator("input[name=quantity]").evaluate("e => e.removeAttribute('min')")
    form.locator("input[name=quantity]").fill("0")
    form.locator("input[name=data]").set_input_files(str(upload))
    form.get_by_role("button", name="Start").click()
    expect(form.locator("[data-error-for='quantity']")).to_contain_text("1")
    expect(page).to_have_url(re.compile(r"/ui/flows/ui.test/orders$"))
    with server.client() as client:
        after = client.get("/api/v1/executions/search", params={"flowId": "orders"}).json()
    assert after["total"] == before["total"]


def test_resume_a_paused_execution_from_the_form_of_its_inputs(
    page: Page, server: ServerProcess
) -> None:
    execution_id = start_from_api(server, "ui.test", "approval")
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    form = page.locator("form.resume-form")
    expect(form).to_contain_text("Paused at ask")
    expect(form.locator("input[name=approved][type=checkbox]")).to_be_visible()
    shoot(page, "paused")
    form.locator("input[name=approved]").check()
    form.locator("input[name=reason]").fill("looks good")
    form.locator("input[name=amount]").evaluate("e => e.removeAttribute('min')")
    form.locator("input[name=amount]").fill("0")
    form.get_by_role("button", name="Resume").click()
    # Refused by the server, shown at the field, and still paused.
    expect(form.locator("[data-error-for='amount']")).not_to_be_empty()
    assert execution_state(server, execution_id) == "PAUSED"
    form.locator("input[name=amount]").fill("5")
    form.get_by_role("button", name="Resume").click()
    expect(page.locator("header[data-execution-state]")).to_have_attribute(
        "data-execution-state", "SUCCESS"
    )
    with server.client() as client:
        execution = client.get(f"/api/v1/executions/{execution_id}").json()
    after = next(t for t in execution["taskRunList"] if t["taskId"] == "after")
    assert after["outputs"]["value"] == "looks good / 5"
    shoot(page, "resumed")


def test_kill_a_running_execution_from_its_page(page: Page, server: ServerProcess) -> None:
    execution_id = start_from_api(server, "ui.other", "slow")
    page.goto(f"{server.url}/ui/executions/{execution_id}/logs")
    mark_page(page)
    # Log lines arrive live while it runs (the second one two seconds after the first).
    expect(page.locator("#log-lines")).to_contain_text("started")
    expect(page.locator("#log-lines")).to_contain_text("still going")
    assert same_page(page)
    expect(page.locator("header[data-execution-state]")).to_have_attribute(
        "data-execution-state", "RUNNING"
    )
    shoot(page, "running")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("header[data-execution-state]")).to_have_attribute(
        "data-execution-state", "KILLED"
    )
    assert execution_state(server, execution_id) == "KILLED"
    shoot(page, "killed")


def test_the_list_filters_refreshes_live_and_kills_several(
    page: Page, server: ServerProcess
) -> None:
    ids = [start_from_api(server, "ui.other", "slow") for _ in range(2)]
    page.goto(f"{server.url}/ui/executions?namespace=ui.other&state=RUNNING")
    table = page.locator("table.executions")
    for execution_id in ids:
        expect(table.locator(f"tr[data-execution='{execution_id}']")).to_be_visible()
    for state in table.locator("tbody [data-state]").all_inner_texts():
        assert state == "RUNNING"
    # A new execution shows up without a reload.
    third = start_from_api(server, "ui.other", "slow")
    expect(table.locator(f"tr[data-execution='{third}']")).to_be_visible(timeout=10_000)
    shoot(page, "executions-list")
    for execution_id in [*ids, third]:
        page.check(f"input[name=ids][value='{execution_id}']")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Kill selected").click()
    expect(page.locator("#bulk-result")).to_contain_text("3 killed")
    for execution_id in [*ids, third]:
        with server.client() as client:
            response = client.get(f"/api/v1/executions/{execution_id}")
        assert response.json()["state"]["current"] in ("KILLING", "KILLED")
    page.goto(f"{server.url}/ui/executions?namespace=ui.other&state=KILLED")
    expect(page.locator("table.executions tbody tr[data-execution]")).not_to_have_count(0)


def test_the_flow_editor_creates_a_flow_shows_problems_at_their_line_and_saves_a_revision(
    page: Page, server: ServerProcess
) -> None:
    page.goto(f"{server.url}/ui/flows/new")
    editor = page.locator("textarea.editor")
    source = EDITED
    editor.fill(source)
    expect(page.locator("#problems")).to_contain_text("Valid: ui.test.edited")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/ui/flows/ui.test/edited/editor$"))
    broken = source.replace("type: io.kestra.plugin.core.debug.Return", "type: Retrun")
    editor = page.locator("textarea.editor")
    editor.fill(broken)
    problem = page.locator("#problems .problem").first
    expect(problem).to_contain_text("Retrun")
    line = broken.splitlines().index("    type: Retrun") + 1
    expect(problem.locator("[data-goto-line]")).to_have_attribute("data-goto-line", str(line))
    expect(page.locator("#problems .ln.bad .n")).to_have_text(str(line))
    shoot(page, "editor-problem")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#problems")).to_contain_text("nothing was saved")
    editor.fill(source.replace("hello {{ inputs.who }}", "hello {{ inputs.who | upper }}"))
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#problems")).to_contain_text("revision 2")
    page.get_by_role("link", name="Revisions").click()
    first = page.locator("details[data-revision]").first
    expect(first).to_contain_text("Revision 2")
    expect(first.locator("pre").first).to_contain_text(
        '+    format: "hello {{ inputs.who | upper }}"'
    )
    shoot(page, "revisions")
    with server.client() as client:
        revisions = client.get("/api/v1/flows/ui.test/edited/revisions").json()
    assert [r["revision"] for r in revisions] == [1, 2]


def test_restart_a_failed_execution_and_replay_from_a_chosen_task_run(
    page: Page, server: ServerProcess
) -> None:
    execution_id = start_from_api(server, "ui.other", "broken")
    page.goto(f"{server.url}/ui/executions/{execution_id}")
    header = page.locator("header[data-execution-state]")
    expect(header).to_have_attribute("data-execution-state", "FAILED")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restart").click()
    expect(page.locator("[data-history]")).to_contain_text("RESTARTED")
    expect(header).to_have_attribute("data-execution-state", "FAILED")
    with server.client() as client:
        document = client.get(f"/api/v1/executions/{execution_id}").json()
    boom = next(t for t in document["taskRunList"] if t["taskId"] == "boom")
    assert len(boom["attempts"]) == 2
    shoot(page, "restarted")

    first = next(t for t in document["taskRunList"] if t["taskId"] == "first")
    page.select_option("#replay-from", first["id"])
    page.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(execution_id))
    replay_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("dl.kv")).to_contain_text(f"Replay of{execution_id}")
    with server.client() as client:
        replayed = client.get(f"/api/v1/executions/{replay_id}").json()
    assert replayed["originalId"] == execution_id
    shoot(page, "replayed")
