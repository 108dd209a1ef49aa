from __future__ import annotations

import pytest

from runtime.logging import configure_logging

configure_logging("warning")


@pytest.fixture
def anyio_backend() -> str:
    """Tiercel is an asyncio runtime; every async test runs on asyncio."""
    return "asyncio"
