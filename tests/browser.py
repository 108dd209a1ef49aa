"""A real headless Chromium for the web UI's tests, driven by Playwright.

Chromium is Debian's (``/usr/bin/chromium``, or ``TIERCEL_CHROMIUM``): Playwright is told
its path, nothing is downloaded. When it is missing, the browser tests fail under
``CI=true`` (``.ci/run`` installs it) and are skipped elsewhere, saying how to get it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.pg import in_ci

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
"""No sandbox (tests may run as root); nothing in the background tries the network."""

SCREENSHOTS = Path(os.environ.get("TIERCEL_SCREENSHOTS") or "build/ui-screenshots")
"""Where the tests write a screenshot of each page they visit."""


def chromium_path() -> str:
    """The Chromium to drive; fails (under CI) or skips the calling test if there is none."""
    found = os.environ.get("TIERCEL_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if found:
        return found
    reason = "no Chromium (install Debian's chromium package or set TIERCEL_CHROMIUM)"
    if in_ci():
        pytest.fail(f"{reason}; CI=true: the browser tests must run", pytrace=False)
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed at the end."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
