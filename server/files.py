"""Files in and out: input images (list, view, upload) and importing workflow files.

Uploads are capped in bytes and in pixels (read from the header, before anything is decoded), are
decoded a few at a time, and are stored re-encoded (never byte for byte, so a file that is also an
HTML page or a script is not kept as one): JPEG photos as JPEG with their own quantisation, all
else as PNG, alpha kept (LoadImage's mask). Only the first frame of an animation is kept, as
LoadImage reads only that one. They are stored in the input folder under a name the server makes
(a cleaned-up stem plus a random suffix); the client's file name never becomes a path.
"""
from __future__ import annotations

import asyncio
import io
import os
import re
import uuid
from pathlib import Path, PureWindowsPath
from urllib.parse import unquote

from aiohttp import BodyPartReader, web
from PIL import Image

from latentgraph.graph import limits
from latentgraph.graph.errors import GraphError
from latentgraph.graph.png_metadata import sweep_from_png, workflow_from_png
from latentgraph.nodes import folders
from latentgraph.server import openapi
from latentgraph.server.api import load
from latentgraph.server.openapi import ref
from latentgraph.server.state import failure, state

routes = web.RouteTableDef()

# The formats accepted (MPO: the JPEG variant many phone cameras write); JPEGs stay JPEGs, the rest
# are stored as PNG.
FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "BMP", "GIF", "TIFF")
PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")  # what a PNG stores as it is
MAX_UPLOAD_PIXELS = 64_000_000  # a 61-megapixel camera's photos pass; a 9000 x 9000 picture does not
CONCURRENT_DECODES = 2  # each may take width x height x 4 bytes and more
DECODES = web.AppKey("decodes", asyncio.Semaphore)
EXIF_ORIENTATION = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def install(app: web.Application, max_pixels: int) -> None:
    """Bound the app's concurrent decodes; let Pillow open pictures up to the app's pixel budget
    (its own decompression-bomb check refuses twice its MAX_IMAGE_PIXELS)."""
    app[DECODES] = asyncio.Semaphore(CONCURRENT_DECODES)
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels


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


class Refused(ValueError):
    """An upload that is an image, but not one we take."""


def reencoded(data: bytes, max_pixels: int = MAX_UPLOAD_PIXELS) -> tuple[bytes, str]:
    """The uploaded image decoded and encoded again, and its extension; raises ValueError for what
    is not an image Pillow reads, or is over `max_pixels` (checked before decoding)."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.format not in FORMATS:
                raise Refused(f"{picture.format} images are not accepted; use PNG, JPEG, WebP, BMP, GIF or TIFF")
            width, height = picture.size
            if width * height > max_pixels:
                raise Refused(f"the image is {width} x {height} pixels ({width * height / 1e6:.1f} megapixels), "
                              f"over this server's limit of {max_pixels / 1e6:g} megapixels")
            picture.load()
            return _encode(picture)
    except Refused:
        raise
    except Exception as exc:  # Pillow raises many kinds of errors for bad data
        raise ValueError(f"not an image Pillow can read ({type(exc).__name__}: {exc})") from None


def _encode(picture: Image.Image) -> tuple[bytes, str]:
    out = io.BytesIO()
    icc = picture.info.get("icc_profile")
    if picture.format in ("JPEG", "MPO"):
        exif = Image.Exif()
        orientation = picture.getexif().get(EXIF_ORIENTATION)
        if orientation:  # LoadImage turns the picture upright by it; the rest of the EXIF is left out
            exif[EXIF_ORIENTATION] = orientation
        quality = "keep" if picture.format == "JPEG" else 95  # "keep": its own tables, no new loss
        picture.save(out, "JPEG", quality=quality, icc_profile=icc, exif=exif.tobytes())
        return out.getvalue(), ".jpg"
    if picture.mode not in PNG_MODES:
        has_alpha = "A" in picture.getbands() or "transparency" in picture.info
        picture = picture.convert("RGBA" if has_alpha else "RGB")
    picture.save(out, "PNG", icc_profile=icc, compress_level=4)
    return out.getvalue(), ".png"


def safe_stem(filename: str) -> str:
    """A file name stem made of letters, digits, '-' and '_' from whatever the client sent."""
    stem = PureWindowsPath(unquote(filename)).stem  # also splits on '/', and drops any folders
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:48]
    return stem or "upload"


def store_upload(folder: Path, data: bytes, filename: str, max_pixels: int = MAX_UPLOAD_PIXELS) -> str:
    """Check, re-encode and store an uploaded image; returns its name in the input folder."""
    data, extension = reencoded(data, max_pixels)
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
        async with request.app[DECODES]:
            name = await asyncio.to_thread(store_upload, server.settings.input, data, filename,
                                           server.max_upload_pixels)
    except ValueError as exc:
        raise failure(400, str(exc)) from None
    return web.json_response({"name": name, "url": f"/api/inputs/{name}"})


def parse_import(data: bytes, bounds: limits.Limits = limits.DEFAULT, max_pixels: int = MAX_UPLOAD_PIXELS) -> object:
    if data.startswith(PNG_SIGNATURE):
        return workflow_from_png(data, bounds, max_pixels)
    try:
        return limits.parse(data, bounds)
    except ValueError as exc:
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
            return load(parse_import(data, server.settings.limits, server.max_upload_pixels), server.settings.limits)
        except ValueError as exc:  # WorkflowFormatError is a ValueError
            return None, [GraphError("bad_format", str(exc))]

    doc, errors = await asyncio.to_thread(convert)
    if doc is None:
        raise failure(400, errors[0].message, [e.to_json() for e in errors])
    sweep = (sweep_from_png(data, server.settings.limits, server.max_upload_pixels)  # a sweep's grid carries it
             if data.startswith(PNG_SIGNATURE) else None)
    return web.json_response({"workflow": doc, **({"sweep": sweep} if sweep is not None else {})})
