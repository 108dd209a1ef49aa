"""Internal storage: files tasks produce, under one root folder, addressed by ``kestra://`` URIs.

A URI names namespace / flow / execution / task run / file. Resolving one never leaves the
root: ``..``, encoded dots, absolute paths, NUL bytes and symlinks pointing out are refused.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import aiofiles
import aiofiles.os

from runtime.errors import TiercelError

SCHEME = "kestra"
DEFAULT_MAX_FILE_BYTES = 1024 * 1024 * 1024
_CHUNK = 256 * 1024
_SAFE_NAME = re.compile(r"^[^/\\\x00]+$")


class StorageError(TiercelError):
    """A URI that does not name a file inside internal storage, or a file too large."""


class LocalStorage:
    """Internal storage in a local folder."""

    def __init__(self, root: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = root.resolve()
        self.max_file_bytes = max_file_bytes

    # -- naming -------------------------------------------------------------------------

    def execution_dir(self, namespace: str, flow_id: str, execution_id: str) -> Path:
        """The folder holding every file of one execution."""
        return self._inside(Path(*namespace.split(".")) / flow_id / "executions" / execution_id)

    def uri_for(self, path: Path) -> str:
        """The ``kestra:///...`` URI of a file inside the root."""
        relative = path.resolve().relative_to(self.root)
        return f"{SCHEME}:///" + "/".join(quote(part) for part in relative.parts)

    def resolve(self, uri: str) -> Path:
        """The local path behind a ``kestra://`` URI.

        :raises StorageError: if the URI is malformed or would leave the root.
        """
        if "\x00" in uri:
            raise StorageError("a storage URI must not contain NUL bytes")
        parsed = urlparse(uri)
        if parsed.scheme != SCHEME:
            raise StorageError(f"not an internal storage URI (kestra://...): {uri!r}")
        if parsed.netloc:
            raise StorageError(f"unexpected host in storage URI {uri!r}")
        parts = [unquote(part) for part in parsed.path.split("/") if part]
        if not parts:
            raise StorageError(f"storage URI {uri!r} names no file")
        for part in parts:
            if part in (".", "..") or not _SAFE_NAME.match(part):
                raise StorageError(f"storage URI {uri!r} has an unsafe segment {part!r}")
        return self._inside(Path(*parts))

    def _inside(self, relative: Path) -> Path:
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise StorageError(f"path {relative} leaves internal storage")
        return candidate

    # -- files --------------------------------------------------------------------------

    async def put_task_file(
        self,
        namespace: str,
        flow_id: str,
        execution_id: str,
        task_run_id: str,
        name: str,
        source: Path,
    ) -> str:
        """Copy ``source`` (streamed) into the task run's folder; return its URI.

        :raises StorageError: if the file is larger than the limit or ``name`` is unsafe.
        """
        clean = Path(name).name
        if not clean or clean in (".", "..") or not _SAFE_NAME.match(clean):
            raise StorageError(f"unsafe file name {name!r}")
        folder = self.execution_dir(namespace, flow_id, execution_id) / "tasks" / task_run_id
        await aiofiles.os.makedirs(folder, exist_ok=True)
        target = self._inside(folder.relative_to(self.root) / clean)
        await self._copy(source, target)
        return self.uri_for(target)

    async def _copy(self, source: Path, target: Path) -> None:
        size = 0
        partial = target.with_name(target.name + ".part")
        try:
            async with aiofiles.open(source, "rb") as reader, aiofiles.open(partial, "wb") as out:
                while chunk := await reader.read(_CHUNK):
                    size += len(chunk)
                    if size > self.max_file_bytes:
                        raise StorageError(
                            f"{source.name} is larger than the {self.max_file_bytes}-byte limit"
                        )
                    await out.write(chunk)
            os.replace(partial, target)
        finally:
            if partial.exists():
                partial.unlink()

    async def put_input_file(
        self, namespace: str, flow_id: str, execution_id: str, input_id: str, source: Path
    ) -> str:
        """Copy an uploaded FILE input (streamed) into the execution's folder; return its URI.

        :raises StorageError: if the file is larger than the limit.
        """
        folder = self.execution_dir(namespace, flow_id, execution_id) / "inputs" / input_id
        await aiofiles.os.makedirs(folder, exist_ok=True)
        name = source.name if _SAFE_NAME.match(source.name) else "upload"
        target = self._inside(folder.relative_to(self.root) / name)
        await self._copy(source, target)
        return self.uri_for(target)

    async def copy_out(self, uri: str, target: Path) -> None:
        """Copy the stored file at ``uri`` to ``target`` (streamed).

        :raises StorageError: if the URI is unsafe or names no file.
        """
        source = self.resolve(uri)
        if not await aiofiles.os.path.isfile(source):
            raise StorageError(f"no file at {uri}")
        async with aiofiles.open(source, "rb") as reader, aiofiles.open(target, "wb") as out:
            while chunk := await reader.read(_CHUNK):
                await out.write(chunk)

    def read_text(self, uri: str, limit: int = 10 * 1024 * 1024) -> str:
        """The text of a stored file (for the ``read()`` expression function).

        :raises StorageError: if the URI is unsafe, the file missing, or over ``limit``.
        """
        path = self.resolve(uri)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StorageError(f"no file at {uri}") from None
        if size > limit:
            raise StorageError(f"{uri} is {size} bytes; read() reads at most {limit}")
        return path.read_text(encoding="utf-8", errors="replace")

    def delete_execution(self, namespace: str, flow_id: str, execution_id: str) -> None:
        """Delete every file of an execution."""
        shutil.rmtree(self.execution_dir(namespace, flow_id, execution_id), ignore_errors=True)


@functools.cache
def storage_for(data_dir: Path) -> LocalStorage:
    """The storage under ``data_dir/storage`` (one object per folder)."""
    root = data_dir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    return LocalStorage(root)
