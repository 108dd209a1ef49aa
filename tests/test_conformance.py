"""Kestra's own test flows and asserted outcomes (../shared/conformance), run on Tiercel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from actors import VirtualClock
from runtime.engine import Runtime
from runtime.flows import FlowRepository
from tests.conformance import conformance_dir
from tests.conformance_runner import load_repository, run_scenario

HERE = Path(__file__).resolve().parent
EXCLUSIONS = HERE / "conformance_exclusions.txt"


def _scenarios() -> list[Path]:
    import os

    from tests.conformance import ROOT

    configured = os.environ.get("TIERCEL_CONFORMANCE_DIR")
    folder = Path(configured) if configured else ROOT.parent / "shared" / "conformance"
    return sorted((folder / "expected").glob("*.json"))


def _excluded() -> dict[str, str]:
    """Scenarios believed not to apply here, with the reason (one ``name: reason`` per line)."""
    found: dict[str, str] = {}
    for line in EXCLUSIONS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(":")
            found[name.strip()] = reason.strip()
    return found


@asynccontextmanager
async def virtual_runtime(repository: FlowRepository) -> AsyncIterator[Runtime]:
    async with Runtime(clock=VirtualClock(), flows=repository) as runtime:
        yield runtime


def test_every_scenario_is_run_or_excluded_with_a_reason() -> None:
    folder = conformance_dir()
    names = {path.stem for path in (folder / "expected").glob("*.json")}
    excluded = _excluded()
    assert set(excluded) <= names, "exclusions name scenarios that do not exist"
    assert all(excluded.values()), "every exclusion needs a reason"


@pytest.mark.parametrize("path", _scenarios(), ids=lambda p: p.stem)
async def test_conformance(path: Path) -> None:
    reason = _excluded().get(path.stem)
    if reason is not None:
        pytest.skip(f"excluded: {reason}")
    repository = load_repository(conformance_dir() / "flows")
    await run_scenario(path, repository, virtual_runtime)
