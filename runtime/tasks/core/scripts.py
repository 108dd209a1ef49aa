"""io.kestra.plugin.scripts: shell and Python scripts, run as local subprocesses.

Lines ``::{"outputs": {...}, "metrics": [...]}::`` on standard output become the task's
``vars`` outputs and metrics; other lines are logs (standard error at WARN). ``outputFiles``
(glob patterns in the working directory) go to internal storage.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from runtime.model._task import Task
from runtime.tasks._api import RunContext, TaskFailedError
from runtime.tasks._process import run_process
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

    def default_interpreter(self) -> list[str]:
        return ["/bin/sh", "-c"]

    def script_lines(self, ctx: RunContext, workdir: Path) -> list[str]:
        raise NotImplementedError

    async def run(self, ctx: RunContext) -> dict[str, Any] | None:
        workdir = ctx.working_dir()
        await self._write_input_files(ctx, workdir)
        lines = [ctx.render_text(c) for c in self.before_commands or ()]
        lines += self.script_lines(ctx, workdir)
        prefix = ["set -e"] if self.fail_fast else []
        script = "\n".join(prefix + lines)
        argv = [*(self.interpreter or self.default_interpreter()), script]
        env = {str(k): str(v) for k, v in (ctx.render(self.env) or {}).items()}
        env.setdefault("WORKING_DIR", str(workdir))
        result = await run_process(ctx, argv, workdir, env)
        outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.vars}
        if self.output_files:
            outputs["outputFiles"] = await self._collect(ctx, workdir)
        if result.exit_code != 0:
            raise TaskFailedError(f"Command failed with exit code {result.exit_code}")
        if self.warning_on_std_err and result.stderr_lines:
            ctx.warn()
        return outputs

    async def _write_input_files(self, ctx: RunContext, workdir: Path) -> None:
        """Write ``inputFiles``: a value that renders to a ``kestra://`` URI is that stored
        file's content (as in Kestra), anything else is the text itself."""
        files = self.input_files
        if files is None:
            return
        if isinstance(files, str):
            rendered = ctx.render_typed(files)
            if not isinstance(rendered, dict):
                raise TaskFailedError("inputFiles must render to a map of file name to content")
            files = rendered
        root = await anyio.Path(workdir).resolve()
        for name, content in files.items():
            target = Path(await anyio.Path(workdir / name).resolve())
            if Path(root) not in target.parents:
                raise TaskFailedError(
                    f"input file {name!r} would be written outside the working dir"
                )
            await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
            text = ctx.render_text(str(content))
            if text.startswith("kestra://") and not any(c.isspace() for c in text.strip()):
                await ctx.get_file(text.strip(), target)
            else:
                await anyio.Path(target).write_text(text)

    async def _collect(self, ctx: RunContext, workdir: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        patterns = [ctx.render_text(pattern) for pattern in self.output_files or ()]
        paths = await anyio.to_thread.run_sync(_matching_files, workdir, patterns)
        for path in paths:
            name = str(path.relative_to(workdir))
            found[name] = await ctx.put_file(path, name.replace("/", "_"))
        return found


def _matching_files(workdir: Path, patterns: list[str]) -> list[Path]:
    """Files of ``workdir`` matching any glob pattern, each once, sorted."""
    found = {path for pattern in patterns for path in workdir.glob(pattern) if path.is_file()}
    return sorted(found)


class _Commands(_ScriptTask, kw_only=True):
    commands: list[str]

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.commands else [("commands", "must list at least one command")]

    def script_lines(self, ctx: RunContext, workdir: Path) -> list[str]:
        return [ctx.render_text(command) for command in self.commands]


class _Script(_ScriptTask, kw_only=True):
    script: str

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.script.strip() else [("script", "must not be empty")]


@task_type("io.kestra.plugin.scripts.shell.Commands", "shell.Commands")
class ShellCommands(_Commands, kw_only=True):
    """Runs ``commands`` in a shell (``set -e``: the first failing command fails the task)."""


@task_type("io.kestra.plugin.scripts.shell.Script", "shell.Script")
class ShellScript(_Script, kw_only=True):
    """Runs ``script`` with a shell."""

    def script_lines(self, ctx: RunContext, workdir: Path) -> list[str]:
        return [ctx.render_text(self.script)]


def python_executable() -> str:
    """``python3`` on the PATH, else the interpreter running Tiercel."""
    return shutil.which("python3") or sys.executable


@task_type("io.kestra.plugin.scripts.python.Commands", "python.Commands")
class PythonCommands(_Commands, kw_only=True):
    """Runs ``commands`` in a shell, with Python available."""


@task_type("io.kestra.plugin.scripts.python.Script", "python.Script")
class PythonScript(_Script, kw_only=True):
    """Runs ``script`` with the Python interpreter."""

    def script_lines(self, ctx: RunContext, workdir: Path) -> list[str]:
        path = workdir / f"script_{ctx.task_run_id}_{ctx.attempt}.py"
        path.write_text(ctx.render_text(self.script))
        return [f'exec "{python_executable()}" "{path}"']
