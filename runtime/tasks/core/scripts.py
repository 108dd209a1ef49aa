"""io.kestra.plugin.scripts: shell and Python scripts, run as local subprocesses."""

from __future__ import annotations

from typing import Any

from runtime.model._task import Task
from runtime.tasks._registry import task_type


class _ScriptTask(Task, kw_only=True):
    env: dict[str, str] | None = None
    before_commands: list[str] | None = None
    output_files: list[str] | None = None
    input_files: dict[str, str] | str | None = None
    namespace_files: dict[str, Any] | None = None
    interpreter: list[str] | None = None
    warning_on_std_err: bool = True
    fail_fast: bool = True
    # Container settings are accepted for compatibility; Tiercel runs processes locally.
    container_image: str | None = None
    task_runner: dict[str, Any] | None = None
    docker: dict[str, Any] | None = None
    runner: str | None = None


class _Commands(_ScriptTask, kw_only=True):
    commands: list[str]

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.commands else [("commands", "must list at least one command")]


class _Script(_ScriptTask, kw_only=True):
    script: str

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.script.strip() else [("script", "must not be empty")]


@task_type("io.kestra.plugin.scripts.shell.Commands", "shell.Commands")
class ShellCommands(_Commands, kw_only=True):
    """Runs each of ``commands`` in a shell."""


@task_type("io.kestra.plugin.scripts.shell.Script", "shell.Script")
class ShellScript(_Script, kw_only=True):
    """Runs ``script`` with a shell."""


@task_type("io.kestra.plugin.scripts.python.Commands", "python.Commands")
class PythonCommands(_Commands, kw_only=True):
    """Runs each of ``commands`` in a shell, with Python available."""


@task_type("io.kestra.plugin.scripts.python.Script", "python.Script")
class PythonScript(_Script, kw_only=True):
    """Runs ``script`` with the Python interpreter."""
