"""The daemon's configuration: defaults, then a YAML file, then environment variables,
then command-line flags (each overrides the one before).

Every setting, in one place (file key / environment variable / flag):

=====================  ==========================  ======================  =================
file key               environment variable        flag                    default
=====================  ==========================  ======================  =================
host                   TIERCEL_HOST                --host                  127.0.0.1
port                   TIERCEL_PORT                --port                  8080
flows                  TIERCEL_FLOWS               --flows                 (none)
data                   TIERCEL_DATA                --data                  .tiercel
store                  TIERCEL_STORE               --store                 sqlite in data
token                  TIERCEL_API_TOKEN           --token                 generated
basic_auth             TIERCEL_BASIC_AUTH          (file or env)           (none)
auth                   TIERCEL_AUTH                --no-auth               true
cors_origins           TIERCEL_CORS_ORIGINS        --cors-origin           (none: CORS off)
max_body_bytes         TIERCEL_MAX_BODY_BYTES                              1 MiB
max_upload_bytes       TIERCEL_MAX_UPLOAD_BYTES                            1 GiB
shutdown_timeout       TIERCEL_SHUTDOWN_TIMEOUT    --shutdown-timeout      30 s
missed_schedules       TIERCEL_MISSED_SCHEDULES                            ALL
max_catch_up           TIERCEL_MAX_CATCH_UP                                1000
retain_ended           TIERCEL_RETAIN_ENDED                                10000
flows_poll_interval    TIERCEL_FLOWS_POLL_INTERVAL                         1.0 s
roles                  TIERCEL_ROLES               --role                  all
worker_concurrency     TIERCEL_WORKER_CONCURRENCY  --worker-concurrency    8
lease_seconds          TIERCEL_LEASE_SECONDS                               10 s
pool_size              TIERCEL_POOL_SIZE                                   8
=====================  ==========================  ======================  =================

``basic_auth`` is ``user:password`` (several separated by commas in the environment, a list
in the file). ``cors_origins`` is a comma-separated list in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from runtime.errors import Problem, TiercelError
from runtime.parsing._yaml import YamlSyntaxError, load_yaml

MissedPolicy = Literal["ALL", "LAST", "NONE"]
ALL_ROLES = {"api", "executor", "worker", "scheduler"}


class ConfigError(TiercelError):
    """The configuration is invalid; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "invalid configuration:\n" + "\n".join(f"  {describe(p)}" for p in problems)
        )


def describe(problem: Problem) -> str:
    """One configuration problem as a line: ``file:line: key: message``."""
    where = ""
    if problem.file is not None:
        where = problem.file + (f":{problem.line}" if problem.line is not None else "") + ": "
    at = f"{problem.path}: " if problem.path else ""
    return f"{where}{at}{problem.message}"


class ServerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything ``tiercel server`` can be told (see the module's table)."""

    host: str = "127.0.0.1"
    port: int = msgspec.field(default=8080)
    flows: Path | None = None
    data: Path = Path(".tiercel")
    store: str | None = None
    token: str | None = None
    basic_auth: list[str] = msgspec.field(default_factory=list)
    auth: bool = True
    cors_origins: list[str] = msgspec.field(default_factory=list)
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 1024 * 1024 * 1024
    shutdown_timeout: float = 30.0
    missed_schedules: MissedPolicy = "ALL"
    max_catch_up: int = 1000
    retain_ended: int = 10_000
    flows_poll_interval: float = 1.0
    roles: list[str] = msgspec.field(default_factory=lambda: ["all"])
    worker_concurrency: int = 8
    lease_seconds: float = 10.0
    pool_size: int = 8

    @property
    def role_set(self) -> set[str]:
        """The roles this process plays (``all`` is every role)."""
        found: set[str] = set()
        for role in self.roles:
            found |= ALL_ROLES if role == "all" else {role}
        return found

    def check(self) -> list[Problem]:
        """Problems beyond types (ranges, shapes)."""
        found: list[Problem] = []

        def bad(field: str, message: str) -> None:
            found.append(Problem(message=message, path=field))

        if not 0 <= self.port <= 65535:
            bad("port", f"must be between 0 and 65535, not {self.port}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_catch_up", "retain_ended"):
            if getattr(self, name) < 1:
                bad(name, f"must be at least 1, not {getattr(self, name)}")
        if self.shutdown_timeout < 0:
            bad("shutdown_timeout", f"must not be negative, not {self.shutdown_timeout}")
        if self.flows_poll_interval <= 0:
            bad("flows_poll_interval", f"must be positive, not {self.flows_poll_interval}")
        for index, pair in enumerate(self.basic_auth):
            user, sep, password = pair.partition(":")
            if not sep or not user or not password:
                bad(f"basic_auth[{index}]", "must be user:password, both non-empty")
        for role in self.roles:
            if role != "all" and role not in ALL_ROLES:
                known = ", ".join(["all", *sorted(ALL_ROLES)])
                bad("roles", f"unknown role {role!r}; expected some of {known}")
        for name in ("worker_concurrency", "pool_size"):
            if getattr(self, name) < 1:
                bad(name, f"must be at least 1, not {getattr(self, name)}")
        if self.lease_seconds < 1:
            bad("lease_seconds", f"must be at least 1 second, not {self.lease_seconds}")
        if self.token is not None and len(self.token) < 16:
            bad("token", "must be at least 16 characters long")
        return found

    @property
    def store_url(self) -> str:
        """Where executions are kept: ``store``, else SQLite in the data folder."""
        return self.store or f"sqlite:///{(self.data / 'tiercel.db').resolve()}"


ENV_PREFIX = "TIERCEL_"
_ENV_NAMES = {
    "token": "TIERCEL_API_TOKEN",
}
_LIST_FIELDS = {"basic_auth", "cors_origins", "roles"}


def _env_name(field: str) -> str:
    return _ENV_NAMES.get(field, ENV_PREFIX + field.upper())


def load_config(
    file: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Build the configuration from a YAML file (``file``, else ``TIERCEL_CONFIG``), the
    environment, and flags (None values are "not given").

    :raises ConfigError: naming the file, line and key (or variable, or flag) at fault.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    located = None
    file = file or environ.get("TIERCEL_CONFIG") or None
    source = str(file) if file is not None else None
    if file is not None:
        located = _read_file(Path(file))
        for key, value in located.data.items():
            merged[key] = value
            origin[key] = "file"
    for field in ServerConfig.__struct_fields__:
        raw = environ.get(_env_name(field))
        if raw is None or raw == "":
            continue
        merged[field] = [p.strip() for p in raw.split(",") if p.strip()] if (
            field in _LIST_FIELDS
        ) else raw  # fmt: skip
        origin[field] = "env"
    for key, value in (flags or {}).items():
        if value is None or value == ():
            continue
        merged[key] = list(value) if isinstance(value, tuple) else value
        origin[key] = "flag"
    try:
        config = msgspec.convert(merged, ServerConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError([_problem_of(str(exc), origin, located, source)]) from None
    problems = config.check()
    if problems:
        raise ConfigError(
            [
                Problem(
                    message=p.message,
                    path=_where(p.path.split("[")[0], origin, p.path),
                    file=source if origin.get(p.path.split("[")[0]) == "file" else None,
                    line=_line(located, p.path.split("[")[0], origin),
                )
                for p in problems
            ]
        )
    return config


def _read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(message=f"cannot read: {exc}", file=str(path))]) from None
    try:
        located = load_yaml(text)
    except YamlSyntaxError as exc:
        line, column = exc.mark if exc.mark else (None, None)
        raise ConfigError(
            [Problem(message=exc.message, file=str(path), line=line, column=column)]
        ) from None
    if located.data is None:
        located.data = {}
    if not isinstance(located.data, dict):
        raise ConfigError([Problem(message="must be a mapping of settings", file=str(path))])
    return located


def _where(field: str, origin: Mapping[str, str], path: str) -> str:
    kind = origin.get(field)
    if kind == "env":
        return f"{path} (environment variable {_env_name(field)})"
    if kind == "flag":
        return f"{path} (flag --{field.replace('_', '-')})"
    return path


def _line(located: Any, field: str, origin: Mapping[str, str]) -> int | None:
    if located is None or origin.get(field) != "file":
        return None
    mark = located.key_mark((field,))
    return mark[0] if mark else None


def _problem_of(
    message: str, origin: Mapping[str, str], located: Any, source: str | None
) -> Problem:
    # msgspec says "Expected `int`, got `str` - at `$.port`" or "Object contains unknown
    # field `prot`"; point at the key.
    field = ""
    if "- at `$." in message:
        field = message.rsplit("- at `$.", 1)[1].rstrip("`").split("[")[0]
        message = message.split(" - at ")[0]
        if message.startswith("Invalid enum value") and field == "missed_schedules":
            message += "; expected one of ALL, LAST, NONE"
    elif "unknown field `" in message:
        field = message.split("unknown field `", 1)[1].split("`")[0]
        known = ", ".join(ServerConfig.__struct_fields__)
        message = f"unknown setting {field!r}; known settings: {known}"
    return Problem(
        message=message,
        path=_where(field, origin, field) if field else "",
        file=source if origin.get(field) == "file" else None,
        line=_line(located, field, origin),
    )
