"""Reading inputs from a request: a JSON object, or multipart form fields and files.

Uploaded files are streamed to a private temporary folder under the data folder (never held
in memory whole), handed to the runtime as paths (it copies them into internal storage),
then removed.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiofiles
import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request

from runtime.server._http import ApiError, read_json

_CHUNK = 256 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FORM_FIELDS = 1000
MAX_FORM_FILES = 100


def _safe_name(filename: str | None) -> str:
    name = _UNSAFE.sub("_", Path(filename or "upload").name).strip("._")
    return name[:200] or "upload"


@asynccontextmanager
async def request_inputs(request: Request, temp_root: Path) -> AsyncIterator[dict[str, Any]]:
    """The inputs a request carries; files stay on disk for the duration of the block.

    A JSON body is the inputs object itself; a multipart body gives one input per field
    (a repeated field gives a list); a body of another type is refused with 415.
    """
    content_type = request.headers.get("content-type", "").lower()
    folder: Path | None = None
    try:
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            inputs: dict[str, Any] = {}
            async with request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS) as form:
                for key in form:
                    values: list[Any] = []
                    for value in form.getlist(key):
                        if isinstance(value, UploadFile):
                            if folder is None:
                                folder = temp_root / secrets.token_hex(8)
                                await anyio.Path(folder).mkdir(parents=True)
                            values.append(await _save(value, folder / key))
                        else:
                            values.append(value)
                    inputs[key] = values[0] if len(values) == 1 else values
            yield inputs
        elif content_type.startswith("application/json") or not content_type:
            body = await read_json(request)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise ApiError(400, "the JSON body must be an object of inputs")
            yield body
        else:
            raise ApiError(
                415,
                f"unsupported content type {content_type!r}; send application/json or "
                "multipart/form-data",
            )
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


async def _save(upload: UploadFile, folder: Path) -> Path:
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    target = folder / _safe_name(upload.filename)
    async with aiofiles.open(target, "wb") as out:
        while chunk := await upload.read(_CHUNK):
            await out.write(chunk)
    return target
