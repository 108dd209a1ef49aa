"""A real ``tiercel server`` in a child process, for tests that talk HTTP to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

TIERCEL = [sys.executable, "-m", "runtime.cli"]


class ServerProcess:
    """A running server: its URL, token, data folder and log."""

    def __init__(self, process: subprocess.Popen[str], url: str, data: Path) -> None:
        self.process = process
        self.url = url
        self.data = data
        self.token = (
            (data / "api-token").read_text().strip() if (data / "api-token").exists() else ""
        )
        self.lines: list[str] = []

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        """An HTTP client with the server's token (or ``token``; "" for none)."""
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the server and wait for it to exit; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    @property
    def log(self) -> str:
        """What the server wrote so far."""
        return "".join(self.lines)


@contextmanager
def running_server(
    data: Path,
    *args: str,
    env: dict[str, str] | None = None,
    startup_timeout: float = 30,
) -> Iterator[ServerProcess]:
    """Start ``tiercel server --port 0 --data DATA ARGS...``; stop it (SIGTERM) on exit."""
    environment = dict(os.environ)
    environment.pop("TIERCEL_API_TOKEN", None)
    environment.update(env or {})
    process = subprocess.Popen(
        [*TIERCEL, "--log-format", "console", "server", "--port", "0", "--data", str(data), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
        cwd=data.parent,
    )
    assert process.stderr is not None
    lines: list[str] = []
    ready = threading.Event()
    url = ""

    def read() -> None:
        nonlocal url
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("Tiercel listening on "):
                url = line.removeprefix("Tiercel listening on ").strip()
                ready.set()
            elif line.startswith("Tiercel running: "):
                url = "-"  # a node without the API role
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + startup_timeout
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the server did not start:\n" + "".join(lines))
    if not url:
        process.wait(10)
        raise AssertionError("the server exited:\n" + "".join(lines))
    server = ServerProcess(process, url, data)
    server.lines = lines
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)
        process.stderr.close()
