"""Where the Kestra conformance corpus lives (``TIERCEL_CONFORMANCE_DIR`` or ../shared)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def conformance_dir() -> Path:
    """The corpus folder. Missing: the calling test fails under CI=true, else is skipped."""
    configured = os.environ.get("TIERCEL_CONFORMANCE_DIR")
    path = Path(configured) if configured else ROOT.parent / "shared" / "conformance"
    if not (path / "flows").is_dir():
        message = f"conformance corpus not found at {path} (set TIERCEL_CONFORMANCE_DIR)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def conformance_flows() -> list[Path]:
    """Every flow file of the corpus (empty if the corpus is missing)."""
    configured = os.environ.get("TIERCEL_CONFORMANCE_DIR")
    path = Path(configured) if configured else ROOT.parent / "shared" / "conformance"
    return sorted((path / "flows").glob("*.yaml"))
