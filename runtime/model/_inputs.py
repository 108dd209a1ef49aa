"""Flow inputs: one spec per Kestra input type (``type: STRING``, ``INT``, ...)."""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Any

from runtime.model._common import Duration, Spec


class InputType(enum.Enum):
    """Kestra's input (and flow output) types."""

    STRING = "STRING"
    INT = "INT"
    FLOAT = "FLOAT"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"
    DATE = "DATE"
    TIME = "TIME"
    DURATION = "DURATION"
    JSON = "JSON"
    YAML = "YAML"
    URI = "URI"
    EMAIL = "EMAIL"
    ENUM = "ENUM"
    SELECT = "SELECT"
    ARRAY = "ARRAY"
    MULTISELECT = "MULTISELECT"
    SECRET = "SECRET"
    FILE = "FILE"


class _Input(Spec, tag_field="type", kw_only=True):
    id: str
    description: str | None = None
    display_name: str | None = None
    required: bool = True
    defaults: Any = None
    depends_on: Any = None

    @property
    def input_type(self) -> InputType:
        """This input's type."""
        return InputType(type(self).__struct_config__.tag)


class StringInput(_Input, tag="STRING", kw_only=True):
    """Text, optionally checked against the regular expression ``validator``."""

    validator: str | None = None


class SecretInput(_Input, tag="SECRET", kw_only=True):
    """Text that is masked in logs and the UI."""

    validator: str | None = None


class IntInput(_Input, tag="INT", kw_only=True):
    """A whole number within ``min`` and ``max`` (inclusive)."""

    min: int | None = None
    max: int | None = None


class FloatInput(_Input, tag="FLOAT", kw_only=True):
    """A number within ``min`` and ``max`` (inclusive)."""

    min: float | None = None
    max: float | None = None


class BooleanInput(_Input, tag="BOOLEAN", kw_only=True):
    """true or false."""


class DateTimeInput(_Input, tag="DATETIME", kw_only=True):
    """An ISO-8601 instant, optionally bounded by ``after`` and ``before``."""

    after: datetime | None = None
    before: datetime | None = None


class DateInput(_Input, tag="DATE", kw_only=True):
    """An ISO-8601 date."""

    after: date | None = None
    before: date | None = None


class TimeInput(_Input, tag="TIME", kw_only=True):
    """An ISO-8601 time of day."""

    after: time | None = None
    before: time | None = None


class DurationInput(_Input, tag="DURATION", kw_only=True):
    """An ISO-8601 duration within ``min`` and ``max``."""

    min: Duration | None = None
    max: Duration | None = None


class JsonInput(_Input, tag="JSON", kw_only=True):
    """A JSON document (given as text or as a structure)."""


class YamlInput(_Input, tag="YAML", kw_only=True):
    """A YAML document (given as text or as a structure)."""


class UriInput(_Input, tag="URI", kw_only=True):
    """A URI with a scheme."""


class EmailInput(_Input, tag="EMAIL", kw_only=True):
    """An e-mail address."""


class EnumInput(_Input, tag="ENUM", kw_only=True):
    """One of ``values`` (deprecated in Kestra in favour of SELECT)."""

    values: list[str]


class SelectInput(_Input, tag="SELECT", kw_only=True):
    """One of ``values``, or anything when ``allowCustomValue``."""

    values: list[str] | None = None
    expression: str | None = None
    allow_custom_value: bool = False
    is_radio: bool = False


class MultiselectInput(_Input, tag="MULTISELECT", kw_only=True):
    """Several of ``values`` (``options`` is the deprecated spelling)."""

    values: list[str] | None = None
    options: list[str] | None = None
    expression: str | None = None
    item_type: InputType = InputType.STRING
    allow_custom_value: bool = False

    @property
    def choices(self) -> list[str] | None:
        """The allowed values, whichever spelling the flow used."""
        return self.values if self.values is not None else self.options


class ArrayInput(_Input, tag="ARRAY", kw_only=True):
    """A list whose items all have type ``itemType``."""

    item_type: InputType


class FileInput(_Input, tag="FILE", kw_only=True):
    """A file, uploaded to internal storage; its value is the file's URI."""

    extension: str = ".upl"


Input = (
    StringInput
    | SecretInput
    | IntInput
    | FloatInput
    | BooleanInput
    | DateTimeInput
    | DateInput
    | TimeInput
    | DurationInput
    | JsonInput
    | YamlInput
    | UriInput
    | EmailInput
    | EnumInput
    | SelectInput
    | MultiselectInput
    | ArrayInput
    | FileInput
)

INPUT_CLASSES: dict[str, type[_Input]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        StringInput,
        SecretInput,
        IntInput,
        FloatInput,
        BooleanInput,
        DateTimeInput,
        DateInput,
        TimeInput,
        DurationInput,
        JsonInput,
        YamlInput,
        UriInput,
        EmailInput,
        EnumInput,
        SelectInput,
        MultiselectInput,
        ArrayInput,
        FileInput,
    )
}
