"""The collector settings the tiercel command applies."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from runtime.gc_tuning import FIRST_THRESHOLD, tune_for_engine


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_the_first_threshold_is_raised_and_the_others_kept() -> None:
    gc.set_threshold(700, 11, 12)
    tune_for_engine()
    assert gc.get_threshold() == (FIRST_THRESHOLD, 11, 12)


@pytest.mark.usefixtures("thresholds")
def test_a_higher_threshold_or_a_disabled_collector_is_left_alone() -> None:
    gc.set_threshold(50_000, 10, 10)
    tune_for_engine()
    assert gc.get_threshold() == (50_000, 10, 10)
    gc.set_threshold(0, 10, 10)  # threshold 0 disables automatic collection: keep it so
    tune_for_engine()
    assert gc.get_threshold() == (0, 10, 10)


def test_the_tiercel_command_tunes_the_collector() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, sys; from runtime.cli import main; "
            "sys.argv = ['tiercel', 'validate', '/nonexistent.yaml']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(gc.get_threshold()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(FIRST_THRESHOLD)
