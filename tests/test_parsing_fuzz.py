"""Random and mutated documents give a valid flow or a typed validation error, nothing else."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import FlowValidationError
from runtime.model import Flow
from runtime.parsing import parse_flow

SEED = """\
id: seed
namespace: company.team
inputs:
  - {id: n, type: INT, defaults: 2}
  - {id: who, type: STRING, required: false}
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.ForEach
    values: [a, b]
    concurrencyLimit: 0
    tasks:
      - id: say
        type: io.kestra.plugin.core.log.Log
        message: "{{ taskrun.value }}"
        retry: {type: constant, interval: PT1S, maxAttempt: 3}
  - id: branch
    type: io.kestra.plugin.core.flow.Switch
    value: "{{ inputs.n }}"
    cases:
      "2": [{id: two, type: io.kestra.plugin.core.debug.Return, format: "2"}]
  - id: wait
    type: io.kestra.plugin.core.flow.Pause
    delay: PT1S
errors:
  - {id: oops, type: io.kestra.plugin.core.log.Log, message: failed}
triggers:
  - {id: cron, type: io.kestra.plugin.core.trigger.Schedule, cron: "0 * * * *"}
"""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["PT1S", "Log", "io.kestra.plugin.core.log.Log", "{{ x }}", "INT", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def parse_or_error(text: str) -> None:
    """Parsing gives a Flow or a FlowValidationError with located problems; nothing else."""
    error: FlowValidationError | None = None
    try:
        result = parse_flow(text, "fuzz.yaml")
    except FlowValidationError as exc:
        error = exc
    if error is None:
        assert isinstance(result, Flow)
        return
    assert error.problems
    assert all(problem.message and problem.file == "fuzz.yaml" for problem in error.problems)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    parse_or_error(text)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    copy: Any = dict(data) if isinstance(data, dict) else list(data)
    copy[head] = _replace(copy[head], tuple(rest), value)
    return copy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_flows(data: st.DataObject) -> None:
    document = yaml.safe_load(SEED)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(document)
        path = data.draw(st.sampled_from(paths))
        document = _replace(document, path, data.draw(values))
    parse_or_error(yaml.safe_dump(document))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED) - 1), st.text(max_size=5), st.integers(0, 5))
def test_text_edits_of_a_valid_flow(position: int, insert: str, delete: int) -> None:
    parse_or_error(SEED[:position] + insert + SEED[position + delete :])


def test_the_seed_itself_is_valid() -> None:
    assert parse_flow(SEED).id == "seed"
