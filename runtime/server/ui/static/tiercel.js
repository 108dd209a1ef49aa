// Tiercel web UI: what htmx does not do by itself. Live pages follow the API's
// server-sent events; actions call the API with the session's anti-forgery token.
(function () {
  "use strict";

  const csrf = () => (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  const csrfHeader = () => (document.querySelector("meta[name=csrf-header]") || {}).content || "x-tiercel-csrf";

  // -- messages -------------------------------------------------------------------------
  function toast(text, isError) {
    let area = document.querySelector(".toast-area");
    if (!area) {
      area = document.createElement("div");
      area.className = "toast-area";
      area.setAttribute("role", "status");
      document.body.appendChild(area);
    }
    const item = document.createElement("div");
    item.className = "toast" + (isError ? " error" : "");
    item.textContent = text;
    area.appendChild(item);
    setTimeout(() => item.remove(), isError ? 9000 : 4000);
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      let text = body.message || response.statusText;
      for (const problem of body.errors || []) {
        text += "\n- " + (problem.path ? problem.path + ": " : "") + problem.message;
      }
      return { text: text, problems: body.errors || [] };
    } catch (e) {
      return { text: response.status + " " + response.statusText, problems: [] };
    }
  }

  // -- htmx: the token on every request, errors as messages -----------------------------
  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers[csrfHeader()] = csrf();
  });
  document.addEventListener("htmx:responseError", async (event) => {
    const xhr = event.detail.xhr;
    let text = xhr.status + " " + xhr.statusText;
    try {
      const body = JSON.parse(xhr.responseText);
      if (body.message) text = body.message;
    } catch (e) { /* an HTML error page: keep the status */ }
    toast(text, true);
  });
  document.addEventListener("htmx:sendError", () => toast("The server cannot be reached.", true));

  // -- actions on the API ----------------------------------------------------------------
  async function callApi(method, url, body) {
    const headers = {};
    headers[csrfHeader()] = csrf();
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" });
  }

  async function afterSuccess(then, response) {
    if (then === "reload") {
      window.location.reload();
    } else if (then === "open-execution") {
      const body = await response.json();
      window.location.href = "/ui/executions/" + encodeURIComponent(body.id);
    } else if (then === "refresh") {
      refreshLive(true);
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-api]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    let url = button.dataset.api;
    if (button.dataset.taskRunFrom) {
      const chosen = document.querySelector(button.dataset.taskRunFrom);
      if (!chosen || !chosen.value) { toast("Choose a task run first.", true); return; }
      url += (url.includes("?") ? "&" : "?") + "taskRunId=" + encodeURIComponent(chosen.value);
    }
    button.disabled = true;
    try {
      const response = await callApi(button.dataset.method || "POST", url);
      if (!response.ok) { toast((await errorText(response)).text, true); return; }
      if (button.dataset.done) toast(button.dataset.done, false);
      await afterSuccess(button.dataset.then || "refresh", response);
    } finally {
      button.disabled = false;
    }
  });

  // Forms sent to the API as multipart: empty fields are left out (defaults apply), a
  // checkbox sends true or false, and 422 problems are shown under their field.
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-api-form]");
    if (!form) return;
    event.preventDefault();
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    const data = new FormData();
    for (const element of form.elements) {
      if (!element.name || element.disabled) continue;
      if (element.type === "checkbox") {
        if (element.dataset.boolean !== undefined) data.append(element.name, element.checked ? "true" : "false");
        continue;
      }
      if (element.type === "file") {
        for (const file of element.files) data.append(element.name, file, file.name);
        continue;
      }
      if (element.tagName === "SELECT" && element.multiple) {
        for (const option of element.selectedOptions) data.append(element.name, option.value);
        continue;
      }
      if (element.value !== "") data.append(element.name, element.value);
    }
    const submit = form.querySelector("[type=submit]");
    if (submit) submit.disabled = true;
    try {
      const response = await callApi(form.dataset.method || "POST", form.dataset.apiForm, data);
      if (!response.ok) {
        const error = await errorText(response);
        let placed = false;
        for (const problem of error.problems) {
          const name = (problem.path || "").replace(/^inputs\./, "");
          const slot = form.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
          if (slot) { slot.textContent = problem.message; placed = true; }
        }
        toast(placed ? "Some inputs are invalid." : error.text, true);
        return;
      }
      await afterSuccess(form.dataset.then || "refresh", response);
    } finally {
      if (submit) submit.disabled = false;
    }
  });

  // -- the executions list: live refresh (not while some are selected), select all -------
  setInterval(() => {
    const live = document.getElementById("live-list");
    if (!live || !live.checked || document.querySelector("input[name=ids]:checked")) return;
    document.body.dispatchEvent(new Event("list-refresh"));
  }, 3000);
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-select-all]")) {
      document.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = event.target.checked; });
    }
  });

  // -- the execution page: live while something may still happen ------------------------
  let refreshTimer = null;
  let lastRefresh = 0;
  let refreshCost = 0; // how long the last refresh took: a large execution refreshes less often
  let source = null;
  let ticker = null;

  function refreshLive(now) {
    const live = document.getElementById("live");
    if (!live) return;
    const run = () => {
      refreshTimer = null;
      const started = Date.now();
      lastRefresh = started;
      htmx.ajax("GET", live.dataset.refresh, { target: "#live", swap: "innerHTML" })
        .then(() => { refreshCost = Date.now() - started; });
    };
    if (now) { run(); return; }
    if (refreshTimer) return;
    const wait = Math.max(150, Math.max(500, 3 * refreshCost) - (Date.now() - lastRefresh));
    refreshTimer = setTimeout(run, wait);
  }

  function followExecution() {
    const page = document.getElementById("live");
    if (!page || !page.dataset.follow) return;
    if (page.dataset.active !== "true") return;
    const names = JSON.parse(page.dataset.events || "[]");
    source = new EventSource(page.dataset.follow);
    for (const name of names) {
      source.addEventListener(name, () => {
        if (name === "LogEmitted" && page.dataset.tab !== "logs") return;
        if (name === "ExecutionEnded") { source.close(); refreshLive(true); return; }
        refreshLive(false);
      });
    }
    source.onerror = () => {
      // The stream ends with the execution; do not reconnect once it has ended.
      const active = document.getElementById("live");
      if (active && active.querySelector("[data-terminal=true]")) source.close();
    };
    ticker = setInterval(() => {
      const current = document.getElementById("live");
      if (!current || current.querySelector("[data-terminal=true]")) { clearInterval(ticker); return; }
      if (page.dataset.tab === "gantt" || page.dataset.tab === "overview") refreshLive(false);
    }, 2000);
  }

  // Logs: lines arrive as server-sent events and are appended (the table is preserved
  // across refreshes of the rest of the page).
  function followLogs() {
    const table = document.getElementById("log-lines");
    if (!table || !table.dataset.stream) return;
    const body = table.querySelector("tbody");
    const logs = new EventSource(table.dataset.stream);
    logs.addEventListener("log", (event) => {
      const entry = JSON.parse(event.data);
      const row = document.createElement("tr");
      const cells = [
        ["time", entry.timestamp.replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace(/\+00:00|Z$/, "")],
        ["lvl lvl-" + entry.level, entry.level],
        ["task", entry.taskId || ""],
        ["msg", entry.message],
      ];
      for (const [cls, text] of cells) {
        const cell = document.createElement("td");
        cell.className = cls;
        cell.textContent = text;
        row.appendChild(cell);
      }
      body.appendChild(row);
      const empty = document.getElementById("no-logs");
      if (empty) empty.remove();
      if (table.dataset.follow === "true") row.scrollIntoView({ block: "nearest" });
    });
    logs.onerror = () => {
      const current = document.getElementById("live");
      if (!current || current.querySelector("[data-terminal=true]")) logs.close();
    };
  }

  // -- the flow editor: tab indents, a problem's line is one click away ------------------
  document.addEventListener("keydown", (event) => {
    const area = event.target;
    if (event.key !== "Tab" || !area.matches("textarea.editor")) return;
    event.preventDefault();
    const start = area.selectionStart;
    area.setRangeText("  ", start, area.selectionEnd, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
  });
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-goto-line]");
    if (!link) return;
    event.preventDefault();
    const area = document.querySelector("textarea.editor");
    if (!area) return;
    const line = parseInt(link.dataset.gotoLine, 10);
    const lines = area.value.split("\n");
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    area.focus();
    area.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
    const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 18;
    area.scrollTop = Math.max(0, (line - 5) * lineHeight);
  });

  document.addEventListener("DOMContentLoaded", () => {
    followExecution();
    followLogs();
  });
  window.tiercel = { toast: toast, refresh: refreshLive };
})();
