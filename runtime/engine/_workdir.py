"""WorkingDirectory: its shared directory, its ``inputFiles`` and its ``outputFiles``.

The ExecutionActor decides when; this module does the file work. Its coroutines run in
tasks of the actor (never in a handler), so file I/O does not block the event loop.

The directory of a WorkingDirectory task run is ``data_dir/work/<execution>/<task run>``.
Its ``tasks`` run in it; then (even when one failed, or the execution is being killed, as
Kestra's worker does: ``postExecuteTasks`` runs after the loop over the tasks) the files
matching ``outputFiles`` go to internal storage and the directory is removed, and only then
do ``errors`` and ``finally`` run, each task in a directory of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.to_thread

from runtime.engine._controller import Child, Controller, Start
from runtime.engine._plans import Plan
from runtime.errors import TiercelError
from runtime.model import Task
from runtime.model._common import as_text
from runtime.model._states import State
from runtime.storage import LocalStorage, StorageError


class WorkingDirectoryError(TiercelError):
    """``inputFiles`` or ``outputFiles`` that cannot be honoured.

    A file name or pattern that would leave the directory, content that is not a map,
    a ``kestra://`` URI naming no stored file, a directory that is gone: the
    WorkingDirectory task run fails with this message in its logs.
    """


def directory_of(data_dir: Path, execution_id: str, task_run_id: str) -> Path:
    """The shared directory of a WorkingDirectory task run."""
    return data_dir / "work" / execution_id / task_run_id


# -- inputFiles ----------------------------------------------------------------------------


def input_files(
    spec: dict[str, str] | str | None,
    render: Callable[[Any], Any],
    render_typed: Callable[[str], Any],
) -> dict[str, str | None]:
    """``inputFiles`` rendered: file name to text (None: an empty file).

    A map has its names and contents rendered (Kestra's ``renderMap``; null contents are
    left out); a string must render to a map, or to JSON text of one.

    :raises WorkingDirectoryError: if the value is not a map of names to contents.
    :raises ExpressionError: if rendering fails.
    """
    if spec is None:
        return {}
    if isinstance(spec, dict):
        rendered = render({name: value for name, value in spec.items() if value is not None})
    else:
        rendered = render_typed(spec)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError:
                raise WorkingDirectoryError(
                    f"inputFiles must render to a map of file name to content, got {rendered!r}"
                ) from None
    if not isinstance(rendered, dict):
        raise WorkingDirectoryError(
            "inputFiles must render to a map of file name to content, "
            f"got {type(rendered).__name__}"
        )
    return {str(name): _content(value) for name, value in rendered.items()}


def _content(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return as_text(value)


def _storage_uri(text: str) -> str | None:
    """The URI when ``text`` is one ``kestra://`` URI (the file's content is wanted)."""
    stripped = text.strip()
    if stripped.startswith("kestra://") and not any(c.isspace() for c in stripped):
        return stripped
    return None


def _inside(root: Path, name: str, what: str) -> Path:
    """``root / name``, resolved, refusing a name that leaves ``root``.

    :raises WorkingDirectoryError: for an empty or absolute name, or one that leaves
        ``root`` (through ``..`` or a symbolic link).
    """
    if not name or "\x00" in name or PurePosixPath(name).is_absolute():
        raise WorkingDirectoryError(
            f"{what} {name!r} is not a relative path inside the working directory"
        )
    target = (root / name).resolve()
    if root not in target.parents:
        raise WorkingDirectoryError(f"{what} {name!r} would leave the working directory")
    return target


async def write_input_files(
    directory: Path, files: dict[str, str | None], storage: LocalStorage
) -> None:
    """Create ``directory`` and write ``files`` into it.

    :raises WorkingDirectoryError: for a name leaving the directory, or a ``kestra://``
        content naming no stored file.
    """
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    root = Path(await anyio.Path(directory).resolve())
    for name, content in files.items():
        target = await anyio.to_thread.run_sync(_inside, root, name, "input file")
        await anyio.Path(target.parent).mkdir(parents=True, exist_ok=True)
        uri = _storage_uri(content) if content is not None else None
        if uri is not None:
            try:
                await storage.copy_out(uri, target)
            except StorageError as exc:
                raise WorkingDirectoryError(f"input file {name!r}: {exc}") from None
        else:
            await anyio.Path(target).write_text(content or "", encoding="utf-8")


# -- outputFiles ---------------------------------------------------------------------------


async def collect_output_files(
    directory: Path,
    patterns: Sequence[str],
    storage: LocalStorage,
    owner: tuple[str, str, str, str],
) -> dict[str, str]:
    """Copy the files of ``directory`` matching ``patterns`` to internal storage.

    ``owner`` is (namespace, flow id, execution id, task run id): where they are stored.
    Returns each file's path relative to the directory mapped to its ``kestra://`` URI.

    :raises WorkingDirectoryError: if the directory is gone, a pattern would leave it, or
        a matching file is a link to somewhere outside it.
    :raises StorageError: if a file is over internal storage's size limit.
    """
    if not await anyio.Path(directory).is_dir():
        raise WorkingDirectoryError(
            f"the working directory {directory} no longer exists, so its outputFiles "
            "cannot be collected"
        )
    matches = await anyio.to_thread.run_sync(_matching_files, directory, list(patterns))
    namespace, flow_id, execution_id, task_run_id = owner
    found: dict[str, str] = {}
    used: set[str] = set()
    for relative, path in matches:
        stored = relative.replace("/", "_")
        if stored in used:
            stored = f"{len(used)}-{stored}"
        used.add(stored)
        found[relative] = await storage.put_task_file(
            namespace, flow_id, execution_id, task_run_id, stored, path
        )
    return found


def _matching_files(directory: Path, patterns: list[str]) -> list[tuple[str, Path]]:
    """(relative name, path) of the files matching any pattern, each once, sorted."""
    root = directory.resolve()
    matchers = [_glob(pattern) for pattern in patterns]
    found: list[tuple[str, Path]] = []
    for folder, _, names in os.walk(root):  # symbolic links to folders are not followed
        for name in names:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if not any(matcher.fullmatch(relative) for matcher in matchers):
                continue
            if not path.is_file():
                continue  # a broken link, a socket...
            if root not in path.resolve().parents:
                raise WorkingDirectoryError(
                    f"output file {relative!r} links outside the working directory"
                )
            found.append((relative, path))
    return sorted(found)


def _glob(pattern: str) -> re.Pattern[str]:
    """A glob pattern as Kestra matches it (Java's ``glob:`` syntax, relative to the
    directory): ``*`` and ``?`` stay within a folder, ``**`` crosses folders, ``{a,b}``
    is either, ``[abc]`` / ``[!abc]`` a character class.

    :raises WorkingDirectoryError: for a pattern that would leave the directory, or one
        that does not parse.
    """
    pure = PurePosixPath(pattern.removeprefix("glob:"))
    if not pattern or pure.is_absolute() or ".." in pure.parts:
        raise WorkingDirectoryError(
            f"outputFiles pattern {pattern!r} would leave the working directory"
        )
    text = pattern.removeprefix("glob:")
    out: list[str] = []
    index = groups = 0
    while index < len(text):
        char = text[index]
        index += 1
        if char == "*" and text.startswith("*", index):
            out.append(".*")
            index += 1
        elif char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and index < len(text):
            out.append(re.escape(text[index]))
            index += 1
        elif char == "{":
            groups += 1
            out.append("(?:")
        elif char == "}" and groups:
            groups -= 1
            out.append(")")
        elif char == "," and groups:
            out.append("|")
        elif char == "[":
            end = text.find("]", index + 1)
            if end == -1:
                raise WorkingDirectoryError(f"outputFiles pattern {pattern!r}: unclosed [")
            body = text[index:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body.replace("^", "\\^")
            out.append(("[^" if negate else "[") + body.replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append(re.escape(char))
    if groups:
        raise WorkingDirectoryError(f"outputFiles pattern {pattern!r}: unclosed {{")
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise WorkingDirectoryError(f"outputFiles pattern {pattern!r}: {exc}") from None


async def remove(directory: Path) -> None:
    """Remove ``directory`` and everything in it (nothing if it is already gone)."""
    await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))


# -- the controller ------------------------------------------------------------------------


class WorkingDirectoryController(Controller):
    """Runs a WorkingDirectory's ``tasks``, then waits while the engine collects its
    ``outputFiles`` and removes its directory (:attr:`collecting`), and after
    :meth:`release` runs ``errors`` (if a task failed) and ``finally``."""

    def __init__(self, main: Plan[Child], errors: Sequence[Task], finally_: Sequence[Task]) -> None:
        super().__init__(main, errors, finally_)
        self.collecting = False
        """The tasks are over; the directory's files are being collected."""
        self.released = False

    def _advance(self) -> list[Start]:
        if not self.released:
            self.collecting = True
            return []
        return super()._advance()

    def release(self, failed: bool = False) -> list[Start]:
        """The files are collected: the children to start next (``errors``, ``finally``).

        ``failed``: collecting failed, which counts as a failure of the tasks.
        """
        if failed:
            self.main_failed = True
            self.main_states.add(State.FAILED)
        self.collecting = False
        self.released = True
        return self._advance()
