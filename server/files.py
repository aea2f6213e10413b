"""Files in and out: input images (list, view, upload) and importing workflow files.

Uploads are capped in size, must fully decode as an image, and are stored in the input folder
under a name the server makes (a cleaned-up stem plus a random suffix); the client's file name
never becomes a path.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import uuid
import warnings
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from PIL import Image

from latentgraph.graph.errors import GraphError
from latentgraph.graph.png_metadata import sweep_from_png, workflow_from_png
from latentgraph.nodes import folders
from latentgraph.server import openapi
from latentgraph.server.api import load
from latentgraph.server.openapi import ref
from latentgraph.server.state import failure, state

routes = web.RouteTableDef()

# Pillow format -> the extension the file is stored with (all in folders.IMAGE_EXTENSIONS).
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
           "TIFF": ".tiff"}  # MPO: the JPEG variant many phone cameras write
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def read_field(request: web.Request, name: str, cap: int) -> tuple[bytes, str]:
    """The bytes and client file name of multipart field `name`, refusing more than `cap` bytes."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):  # aiohttp asserts on a non-multipart body
        raise failure(400, f"expected a multipart/form-data body with a '{name}' field") from None
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != name:
            continue
        data = bytearray()
        while chunk := await part.read_chunk(1 << 16):
            data += chunk
            if len(data) > cap:
                raise failure(400, f"the file is larger than the limit of {cap // (1 << 20)} MiB")
        return bytes(data), part.filename or ""
    raise failure(400, f"the form has no '{name}' field")


def image_format(data: bytes) -> str:
    """The file extension for an image Pillow fully decodes; raises ValueError otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # huge pixel counts: refused
            with Image.open(io.BytesIO(data)) as picture:
                picture.load()
                kind = picture.format
    except Exception as exc:  # Pillow raises many kinds of errors for bad data
        raise ValueError(f"not an image Pillow can read ({exc})") from None
    if kind not in FORMATS:
        raise ValueError(f"{kind} images are not accepted; use PNG, JPEG, WebP, BMP, GIF or TIFF")
    return FORMATS[kind]


def safe_stem(filename: str) -> str:
    """A file name stem made of letters, digits, '-' and '_' from whatever the client sent."""
    stem = PureWindowsPath(unquote(filename)).stem  # also splits on '/', and drops any folders
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:48]
    return stem or "upload"


def store_upload(folder: Path, data: bytes, filename: str) -> str:
    """Check and store an uploaded image; returns its name in the input folder."""
    extension = image_format(data)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{safe_stem(filename)}-{uuid.uuid4().hex[:8]}{extension}"
    partial = folder / f".upload-{uuid.uuid4().hex}.part"  # hidden from the listing until complete
    partial.write_bytes(data)
    os.replace(partial, folder / name)
    return name


@routes.get("/api/inputs")
@openapi.operation(answer={"type": "object", "properties": {"images": {"type": "array", "items": {"type": "string"}}}})
async def input_images(request: web.Request) -> web.Response:
    """Names of the images in the input folder (LoadImage's choices)."""
    names = await asyncio.to_thread(folders.list_input_images, state(request).settings)
    return web.json_response({"images": names})


@routes.get("/api/inputs/{name:.+}")
@openapi.operation(answer_type="image/*", errors={404: "not in the input folder"})
async def input_image(request: web.Request) -> web.FileResponse:
    """An image of the input folder, by a name from /api/inputs."""
    name = request.match_info["name"]
    path = await asyncio.to_thread(folders.find_input_image, state(request).settings, name)
    if path is None:
        raise failure(404, f"{name!r} is not in the input folder")
    return web.FileResponse(path)


@routes.post("/api/upload")
@openapi.operation(form={"image": {"type": "string", "format": "binary"}},
                   answer={"type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}}},
                   errors={400: "not an image, or larger than the limit"})
async def upload(request: web.Request) -> web.Response:
    """Upload an image into the input folder; answers the name it was stored under."""
    server = state(request)
    data, filename = await read_field(request, "image", server.max_upload_bytes)
    try:
        name = await asyncio.to_thread(store_upload, server.settings.input, data, filename)
    except ValueError as exc:
        raise failure(400, str(exc)) from None
    return web.json_response({"name": name, "url": f"/api/inputs/{name}"})


def parse_import(data: bytes) -> object:
    if data.startswith(PNG_SIGNATURE):
        return workflow_from_png(data)
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"neither a PNG nor a JSON file ({exc})") from None


@routes.post("/api/import")
@openapi.operation(form={"file": {"type": "string", "format": "binary"}},
                   answer={"type": "object", "properties": {"workflow": ref("Workflow"), "sweep": {
                       "$ref": "#/components/schemas/Sweep", "description": "present when the PNG is a sweep's grid"}}},
                   errors={400: "not a workflow in any format we read"})
async def import_file(request: web.Request) -> web.Response:
    """Convert a workflow file (JSON in any accepted format, or a PNG with an embedded workflow) to our format.

    A sweep's grid PNG also gives back its sweep."""
    server = state(request)
    data, _ = await read_field(request, "file", server.max_upload_bytes)

    def convert():
        try:
            return load(parse_import(data))
        except ValueError as exc:  # WorkflowFormatError is a ValueError
            return None, [GraphError("bad_format", str(exc))]

    doc, errors = await asyncio.to_thread(convert)
    if doc is None:
        raise failure(400, errors[0].message, [e.to_json() for e in errors])
    sweep = sweep_from_png(data) if data.startswith(PNG_SIGNATURE) else None  # a sweep's grid carries it
    return web.json_response({"workflow": doc, **({"sweep": sweep} if sweep is not None else {})})
