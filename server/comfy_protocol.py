"""ComfyUI's server protocol, beside our own API on the same server, so that programs written for
ComfyUI (painting-app plugins, chat front-ends, Python clients, render scripts) use latentgraph
unchanged. Every route is served at its ComfyUI path and again under /api/, as ComfyUI does.

Where ComfyUI's /api/ paths are also ours (GET/POST /api/queue, POST /api/interrupt) one handler
answers both (`shared`); /ws speaks ComfyUI's messages to a client that names its `clientId` and
ours otherwise; our job history moved to /api/jobs. docs/comfyui.md lists the routes, the messages
and what differs from ComfyUI. The security middleware guards these routes as it guards ours.
"""
from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import re
import sys
import threading
import uuid
from pathlib import Path, PurePosixPath

from aiohttp import BodyPartReader, web
from PIL import Image

import latentgraph
from latentgraph.graph.workflow import detect_format, is_link, load_workflow
from latentgraph.nodes import folders, registry
from latentgraph.server import openapi
from latentgraph.server.api import check
from latentgraph.server.comfy_bridge import ComfyBridge
from latentgraph.server.comfy_catalog import node_info, object_info
from latentgraph.server.files import image_format, safe_stem
from latentgraph.server.state import inside, state

BRIDGE = web.AppKey("comfy_bridge", ComfyBridge)
TAG = "comfyui"
HISTORY_LIMIT = 10_000  # ComfyUI's own history size
FOLDER_TYPES = ("input", "output", "temp")
ANNOTATED = re.compile(r"(.+) \[(input|output|temp)\]")  # "name.png [output]" names its folder
SUBFOLDER_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9 _.()-]{0,99}")

# ComfyUI's validation error types for ours
ERROR_TYPES = {
    "missing_input": ("required_input_missing", "Required input is missing"),
    "type_mismatch": ("return_type_mismatch", "Return type mismatch between linked nodes"),
    "bad_value": ("invalid_input_type", "Failed to convert an input value"),
    "not_in_choices": ("value_not_in_list", "Value not in list"),
    "missing_node": ("bad_linked_input", "Bad linked input"),
    "missing_output": ("bad_linked_input", "Bad linked input"),
    "unknown_type": ("missing_node_type", "Node type not found"),
    "unknown_input": ("unknown_input", "Unknown input"),
    "unsupported": ("custom_validation_failed", "Not supported"),
    "cycle": ("dependency_cycle", "Dependency cycle detected"),
    "bad_format": ("invalid_prompt", "Invalid prompt"),
}

comfy = web.RouteTableDef()  # at ComfyUI's paths; `routes` adds the same under /api/


def bridge(request: web.Request) -> ComfyBridge:
    return request.app[BRIDGE]


def refusal(error_type: str, message: str, details: str = "", node_errors: dict | None = None,
            status: int = 400) -> web.Response:
    """ComfyUI's error answer: {"error": {type, message, details, extra_info}, "node_errors"}."""
    return web.json_response({"error": {"type": error_type, "message": message, "details": details,
                                        "extra_info": {}}, "node_errors": node_errors or {}}, status=status)


async def body_of(request: web.Request) -> object:
    """The JSON body, {} when empty; None when it is not JSON."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


# --- POST /prompt: validation errors in ComfyUI's shape -------------------------------------------

def comfy_error(error: dict) -> dict:
    kind = error["kind"]
    if kind == "out_of_range":
        below = "below the minimum" in error["message"]
        pair = ("value_smaller_than_min", "Value smaller than min") if below else \
            ("value_bigger_than_max", "Value bigger than max")
    else:
        pair = ERROR_TYPES.get(kind, (kind, kind.replace("_", " ").capitalize()))
    return {"type": pair[0], "message": pair[1], "details": error["message"],
            "extra_info": {"input_name": error["input"]} if error["input"] else {}}


def dependent_outputs(doc: dict) -> dict[str, list[str]]:
    """For each node, the output nodes that need it (ComfyUI's `dependent_outputs`)."""
    specs, nodes = registry(), doc["nodes"]
    users: dict[str, set[str]] = {}
    for node_id, node in nodes.items():
        for value in (node.get("inputs") or {}).values() if isinstance(node, dict) else ():
            if is_link(value):
                users.setdefault(str(value["node"]), set()).add(node_id)
    needed: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        spec = specs.get(node.get("type")) if isinstance(node, dict) else None
        if spec is None or not spec.output_node:
            continue
        stack, seen = [node_id], {node_id}
        while stack:  # walk upstream from the output
            current = stack.pop()
            needed.setdefault(current, []).append(node_id)
            inputs = (nodes.get(current) or {}).get("inputs") or {}
            for value in inputs.values():
                if is_link(value) and str(value["node"]) not in seen and str(value["node"]) in nodes:
                    seen.add(str(value["node"]))
                    stack.append(str(value["node"]))
    return needed


def invalid_answer(doc: dict | None, errors: list[dict]) -> web.Response:
    """ComfyUI's 400 answer for an invalid prompt: the errors by node in `node_errors`, and the
    first problem (or a summary) in `error`."""
    node_errors: dict[str, dict] = {}
    needed = dependent_outputs(doc) if doc else {}
    for error in errors:
        node_id = error["node_id"]
        if node_id is None:
            continue
        entry = node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": needed.get(node_id, []),
                                                 "class_type": error["node_type"]})
        entry["errors"].append(comfy_error(error))
    unknown = next((e for e in errors if e["kind"] == "unknown_type"), None)
    if unknown is not None:
        return refusal("missing_node_type", f"Node '{unknown['node_type']}' not found: latentgraph has no such "
                                            "node type", f"Node ID '#{unknown['node_id']}'", node_errors)
    whole = [e for e in errors if e["node_id"] is None]
    if whole and whole[0]["kind"] == "no_output":
        return refusal("prompt_no_outputs", "Prompt has no outputs", whole[0]["message"], node_errors)
    if whole and not node_errors:
        return refusal("invalid_prompt", "Invalid prompt", whole[0]["message"], node_errors)
    details = "\n".join(f"{comfy_error(e)['message']}: {e['message']}" for e in errors)
    return refusal("prompt_outputs_failed_validation", "Prompt outputs failed validation", details, node_errors)


@comfy.post("/prompt")
@openapi.operation(tag=TAG, body={"type": "object", "required": ["prompt"], "properties": {
    "prompt": {"type": "object", "description": "a ComfyUI API-format workflow (other formats are read too)"},
    "client_id": {"type": "string"}, "prompt_id": {"type": "string"}, "extra_data": {"type": "object"}}},
    answer={"type": "object", "properties": {"prompt_id": {"type": "string"}, "number": {"type": "integer"},
                                             "node_errors": {"type": "object"}}},
    errors={400: "invalid: ComfyUI's {error: {type, message, details, extra_info}, node_errors}"})
async def post_prompt(request: web.Request) -> web.Response:
    """Queue a workflow (ComfyUI's POST /prompt); it is validated first and refused with ComfyUI's error shape."""
    server, body = state(request), await body_of(request)
    if not isinstance(body, dict) or "prompt" not in body:
        return refusal("no_prompt", "No prompt provided", "the body must be JSON with a 'prompt'")
    prompt = body["prompt"]
    doc, errors = await asyncio.to_thread(check, server, prompt)
    if errors:
        return invalid_answer(load_or_none(prompt), errors)
    client_id = body.get("client_id") if isinstance(body.get("client_id"), str) else None
    prompt_id = body.get("prompt_id") if isinstance(body.get("prompt_id"), str) and body["prompt_id"] else None
    extra = body.get("extra_data") if isinstance(body.get("extra_data"), dict) else {}
    job, _, _ = server.jobs.submit(doc, client_id)
    # Before any await, so that the job's first event finds it known.
    known = bridge(request).adopt(job.job_id, client_id, prompt_id, api=prompt if _is_api(prompt) else None,
                                  extra_data={k: v for k, v in extra.items() if k != "extra_pnginfo"})
    return web.json_response({"prompt_id": known.prompt_id, "number": known.number, "node_errors": {}})


def _is_api(prompt: object) -> bool:
    try:
        return detect_format(prompt) == "comfyui-api"
    except ValueError:
        return False


def load_or_none(prompt: object) -> dict | None:
    try:
        return load_workflow(prompt) if isinstance(prompt, dict) else None
    except Exception:  # the errors already say why it cannot be read
        return None


@comfy.get("/prompt")
@openapi.operation(tag=TAG, answer={"type": "object", "properties": {"exec_info": {"type": "object"}}})
async def get_prompt(request: web.Request) -> web.Response:
    """How many prompts are left to run: {"exec_info": {"queue_remaining": N}}."""
    return web.json_response(bridge(request).status())


# --- queue, interrupt, history ----------------------------------------------------------------

@comfy.get("/queue")
@openapi.operation(tag=TAG, answer={"type": "object", "properties": {
    "queue_running": {"type": "array"}, "queue_pending": {"type": "array"}}})
async def get_queue(request: web.Request) -> web.Response:
    """The running and pending prompts, each [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
    return web.json_response(await asyncio.to_thread(bridge(request).queue))


def edit_queue(request: web.Request, body: dict) -> list[str]:
    """ComfyUI's {"clear": true} and {"delete": [prompt_id]}: cancel pending prompts; returns the job ids."""
    jobs, link = state(request).jobs, bridge(request)
    cancelled = jobs.clear() if body.get("clear") else []
    deletes = body.get("delete")
    for prompt_id in deletes if isinstance(deletes, list) else []:
        job_id = link.job_id(str(prompt_id))
        if jobs.cancel(job_id) is None:
            cancelled.append(job_id)
    return cancelled


@comfy.post("/queue")
@openapi.operation(tag=TAG, body={"type": "object", "properties": {
    "clear": {"type": "boolean"}, "delete": {"type": "array", "items": {"type": "string"}}}},
    answer={"type": "object", "properties": {"cancelled": {"type": "array", "items": {"type": "string"}}}})
async def post_queue(request: web.Request) -> web.Response:
    """Cancel pending prompts: {"clear": true} all of them, {"delete": [prompt_id]} those (the running one goes on)."""
    body = await body_of(request)
    if not isinstance(body, dict):
        return refusal("invalid_request", "the body must be a JSON object")
    return web.json_response({"cancelled": edit_queue(request, body)})


@comfy.post("/interrupt")
@openapi.operation(tag=TAG, body={"type": "object", "properties": {"prompt_id": {"type": "string"}}},
                   answer={"type": "object", "properties": {"interrupted": {"type": ["string", "null"]}}})
async def post_interrupt(request: web.Request) -> web.Response:
    """Interrupt the running prompt (only if it is `prompt_id`, when given) at its next node or sampler step."""
    body = await body_of(request)
    prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
    job_id = bridge(request).job_id(prompt_id) if isinstance(prompt_id, str) else None
    return web.json_response({"interrupted": state(request).jobs.interrupt(job_id)})


def history_entries(request: web.Request, max_items: int | None) -> dict:
    server, link = state(request), bridge(request)
    jobs = [job for job in server.history.recent(HISTORY_LIMIT) if link.shows(job)]
    jobs = jobs[:max_items] if max_items is not None else jobs
    return {link.prompt_id(job["job_id"]): link.history_entry(job) for job in reversed(jobs)}  # oldest first


@comfy.get("/history")
@openapi.operation(tag=TAG, query={"max_items": {"type": "integer", "minimum": 1}},
                   answer={"type": "object", "description": "prompt_id -> {prompt, outputs, status, meta}"})
async def get_history(request: web.Request) -> web.Response:
    """Finished prompts (the newest `max_items`, oldest first), keyed by prompt id."""
    raw = request.query.get("max_items")
    try:
        max_items = max(int(raw), 1) if raw is not None else None
    except ValueError:
        return refusal("invalid_request", "max_items must be a whole number")
    return web.json_response(await asyncio.to_thread(history_entries, request, max_items))


@comfy.get("/history/{prompt_id}")
@openapi.operation(tag=TAG, answer={"type": "object", "description": "{prompt_id: entry}, or {} until it finished"})
async def get_history_item(request: web.Request) -> web.Response:
    """One finished prompt, {} while it is pending or running or when unknown (as ComfyUI answers)."""
    link, prompt_id = bridge(request), request.match_info["prompt_id"]
    job = await asyncio.to_thread(state(request).history.get, link.job_id(prompt_id))
    return web.json_response({prompt_id: link.history_entry(job)} if link.shows(job) else {})


@comfy.post("/history")
@openapi.operation(tag=TAG, body={"type": "object", "properties": {
    "clear": {"type": "boolean"}, "delete": {"type": "array", "items": {"type": "string"}}}})
async def post_history(request: web.Request) -> web.Response:
    """Take prompts out of ComfyUI's history view ({"clear": true} or {"delete": [prompt_id]}); our own job
    history (/api/jobs) keeps them."""
    body, link = await body_of(request), bridge(request)
    if not isinstance(body, dict):
        return refusal("invalid_request", "the body must be a JSON object")
    if body.get("clear"):
        link.hidden.update(job["job_id"] for job in await asyncio.to_thread(
            state(request).history.recent, HISTORY_LIMIT))
    deletes = body.get("delete")
    for prompt_id in deletes if isinstance(deletes, list) else []:
        link.hidden.add(link.job_id(str(prompt_id)))
    return web.json_response({})


# --- files: view and upload -----------------------------------------------------------------------

def folder_of(request: web.Request, kind: str) -> Path | None:
    settings = state(request).settings
    return {"input": settings.input, "output": settings.output, "temp": settings.temp}.get(kind)


def clean_subfolder(subfolder: str) -> str | None:
    """A subfolder made of plain names (no '..', no hidden or absolute parts), or None."""
    parts = [part for part in subfolder.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts) if all(SUBFOLDER_PART.fullmatch(p) and p != ".." for p in parts) else None


def locate(request: web.Request, filename: str, subfolder: str, kind: str) -> Path | None:
    """The file ComfyUI names by (filename, subfolder, type), only inside the input, output or temp folder."""
    annotated = ANNOTATED.fullmatch(filename)
    if annotated:
        filename, kind = annotated.groups()
    root, subfolder = folder_of(request, kind), clean_subfolder(subfolder)
    if root is None or subfolder is None or not filename or "/" in filename or "\\" in filename \
            or filename.startswith("."):
        return None
    return inside(root, str(PurePosixPath(subfolder) / filename))


def converted(path: Path, preview: str | None, channel: str) -> tuple[bytes, str] | None:
    """The file as /view's `preview` (webp or jpeg, ;quality) or `channel` (rgb, a; "" or rgba: all) asks;
    None: as it is."""
    if preview is None and channel not in ("rgb", "a"):
        return None
    buffer = io.BytesIO()
    with Image.open(path) as picture:
        picture.load()
        if preview is not None:  # a smaller encoding for display, as ComfyUI's frontend asks for
            kind, _, quality = preview.partition(";")
            kind = kind if kind in ("webp", "jpeg") and "a" not in channel else "webp"
            if kind == "jpeg" or channel == "rgb":
                picture = picture.convert("RGB")
            picture.save(buffer, format=kind.upper(), quality=int(quality) if quality.isdigit() else 90)
            return buffer.getvalue(), f"image/{kind}"
        if channel == "rgb":
            picture = picture.convert("RGB")
        else:  # the alpha channel alone (opaque when the picture has none)
            alpha = picture.getchannel("A") if picture.mode == "RGBA" else Image.new("L", picture.size, 255)
            picture = Image.new("RGBA", picture.size)
            picture.putalpha(alpha)
        picture.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"


@comfy.get("/view")
@openapi.operation(tag=TAG, answer_type="image/*", query={
    "filename": {"type": "string"}, "subfolder": {"type": "string"}, "type": {"enum": list(FOLDER_TYPES)},
    "preview": {"type": "string"}, "channel": {"enum": ["rgba", "rgb", "a"]}}, errors={404: "no such file"})
async def view(request: web.Request) -> web.StreamResponse:
    """A file of the output, input or temp folder, by ComfyUI's (filename, subfolder, type)."""
    query = request.query
    path = await asyncio.to_thread(locate, request, query.get("filename", ""), query.get("subfolder", ""),
                                   query.get("type", "output"))
    if path is None:
        return web.json_response({"error": "no such file in the input, output or temp folder"}, status=404)
    headers = {"Content-Disposition": f'filename="{path.name}"'}
    other = await asyncio.to_thread(converted, path, query.get("preview"), query.get("channel", ""))
    if other is not None:
        return web.Response(body=other[0], content_type=other[1], headers=headers)
    return web.FileResponse(path, headers=headers)


async def read_form(request: web.Request, cap: int) -> dict[str, object]:
    """Every field of a multipart form: files as (bytes, filename), others as text; files capped at `cap`."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):  # aiohttp asserts on a non-multipart body
        raise web.HTTPBadRequest(text="expected a multipart/form-data body") from None
    form: dict[str, object] = {}
    async for part in reader:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        data = bytearray()
        limit = cap if part.filename is not None else 1 << 16
        while chunk := await part.read_chunk(1 << 16):
            data += chunk
            if len(data) > limit:
                raise web.HTTPBadRequest(text=f"the field {part.name!r} is larger than the limit of {limit} bytes")
        form[part.name] = (bytes(data), part.filename) if part.filename is not None else data.decode("utf-8", "replace")
    return form


UPLOAD_LOCK = threading.Lock()  # choosing a free name and writing it is one step


def store(folder: Path, stem: str, extension: str, data: bytes, overwrite: bool) -> str:
    """Write an upload under `stem`+`extension` in `folder` (ComfyUI's naming: an identical file already
    there is reused, another gets ' (n)' added unless `overwrite`); returns the name."""
    with UPLOAD_LOCK:
        folder.mkdir(parents=True, exist_ok=True)
        name, n = f"{stem}{extension}", 1
        while (folder / name).exists() and not overwrite:
            if (folder / name).is_file() and (folder / name).read_bytes() == data:
                return name
            name, n = f"{stem} ({n}){extension}", n + 1
        partial = folder / f".upload-{uuid.uuid4().hex}.part"
        partial.write_bytes(data)
        os.replace(partial, folder / name)
        return name


def with_mask(original: Path, mask: bytes) -> bytes:
    """ComfyUI's mask upload: the original picture with the uploaded picture's alpha as its alpha, as PNG."""
    with Image.open(original) as picture, Image.open(io.BytesIO(mask)) as painted:
        text = dict(getattr(picture, "text", {}) or {})
        result = picture.convert("RGBA")
        result.putalpha(painted.convert("RGBA").getchannel("A").resize(result.size))
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


async def upload(request: web.Request, mask: bool) -> web.Response:
    server = state(request)
    form = await read_form(request, server.max_upload_bytes)
    image = form.get("image")
    if not isinstance(image, tuple) or not image[0]:
        return web.json_response({"error": "the form has no 'image' file"}, status=400)
    data, filename = image
    kind, subfolder = str(form.get("type") or "input"), clean_subfolder(str(form.get("subfolder") or ""))
    root = folder_of(request, kind)
    if root is None or subfolder is None:
        return web.json_response({"error": "type must be input, output or temp, and subfolder plain folder "
                                           "names"}, status=400)
    try:
        extension = await asyncio.to_thread(image_format, data)
        if mask:
            try:
                ref = json.loads(str(form.get("original_ref")))
                original = locate(request, str(ref["filename"]), str(ref.get("subfolder") or ""),
                                  str(ref.get("type") or "output"))
            except (ValueError, KeyError, TypeError):
                original = None
            if original is None:
                return web.json_response({"error": "original_ref names no file in the input, output or temp "
                                                   "folder"}, status=400)
            data, extension = await asyncio.to_thread(with_mask, original, data), ".png"
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    overwrite = str(form.get("overwrite", "")).lower() in ("true", "1")
    name = await asyncio.to_thread(store, root / subfolder, safe_stem(filename or ""), extension, data, overwrite)
    return web.json_response({"name": name, "subfolder": subfolder, "type": kind})


UPLOAD_FORM = {"image": {"type": "string", "format": "binary"}}
UPLOADED = {"type": "object", "properties": {"name": {"type": "string"}, "subfolder": {"type": "string"},
                                             "type": {"type": "string"}}}


@comfy.post("/upload/image")
@openapi.operation(tag=TAG, form=UPLOAD_FORM, answer=UPLOADED, errors={400: "not an image, or too large"})
async def upload_image(request: web.Request) -> web.Response:
    """Upload an image (fields image, type, subfolder, overwrite) into the input (or temp, output) folder."""
    return await upload(request, mask=False)


@comfy.post("/upload/mask")
@openapi.operation(tag=TAG, form=UPLOAD_FORM, answer=UPLOADED, errors={400: "not an image, or no original"})
async def upload_mask(request: web.Request) -> web.Response:
    """Upload a mask: the picture named by original_ref with this image's alpha, stored as PNG."""
    return await upload(request, mask=True)


# --- node and model information -----------------------------------------------------------------

def resolver(request: web.Request):
    settings = state(request).settings
    return lambda inp: folders.resolve_choices(settings, inp.choices_from)


@comfy.get("/object_info")
@openapi.operation(tag=TAG, answer={"type": "object", "description": "node type -> ComfyUI's node info"})
async def get_object_info(request: web.Request) -> web.Response:
    """Every node type in ComfyUI's object_info shape, generated from our catalog."""
    return web.json_response(await asyncio.to_thread(object_info, registry(), resolver(request)))


@comfy.get("/object_info/{node_class}")
@openapi.operation(tag=TAG, answer={"type": "object"})
async def get_object_info_node(request: web.Request) -> web.Response:
    """One node type's info, {} when unknown (as ComfyUI answers)."""
    spec = registry().get(request.match_info["node_class"])
    if spec is None:
        return web.json_response({})
    return web.json_response({spec.name: await asyncio.to_thread(node_info, spec, resolver(request))})


def memory() -> tuple[int, int]:
    """(total, available) bytes of RAM."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    try:
        with open("/proc/meminfo") as info:
            free = next(int(line.split()[1]) * 1024 for line in info if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        free = 0
    return total, free


def system_stats(device) -> dict:
    import torch

    ram_total, ram_free = memory()
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        name = f"{device} {torch.cuda.get_device_name(device)}"
    else:
        free, total, name = ram_free, ram_total, str(device)
    return {"system": {"os": os.name, "ram_total": ram_total, "ram_free": ram_free,
                       "comfyui_version": f"latentgraph {latentgraph.__version__}",
                       "python_version": sys.version, "pytorch_version": torch.__version__,
                       "embedded_python": False, "argv": sys.argv},
            "devices": [{"name": name, "type": device.type, "index": device.index, "vram_total": total,
                         "vram_free": free, "torch_vram_total": total, "torch_vram_free": free}]}


@comfy.get("/system_stats")
@openapi.operation(tag=TAG, answer={"type": "object", "properties": {"system": {"type": "object"},
                                                                      "devices": {"type": "array"}}})
async def get_system_stats(request: web.Request) -> web.Response:
    """The machine and the device the server computes on, in ComfyUI's shape."""
    return web.json_response(await asyncio.to_thread(system_stats, state(request).executor.device))


@comfy.get("/features")
@openapi.operation(tag=TAG, answer={"type": "object"})
async def get_features(request: web.Request) -> web.Response:
    """What this server supports, as ComfyUI's frontend asks it."""
    return web.json_response({"supports_preview_metadata": False,
                              "max_upload_size": state(request).max_upload_bytes})


MODEL_FOLDERS = {  # ComfyUI's folder names that our nodes read, with their listings
    "checkpoints": lambda settings: sorted(folders.list_checkpoints(settings, include_pickles=True)),
    "loras": lambda settings: sorted(folders.list_loras(settings)),
    "vae": lambda settings: sorted(folders.list_vaes(settings, include_pickles=True)),
    "controlnet": lambda settings: sorted(folders.list_controlnets(settings, include_pickles=True)),
    "embeddings": lambda settings: sorted(n for n in folders.list_embeddings(settings)
                                          if n.lower().endswith(folders.EMBEDDING_EXTENSIONS)),
}


@comfy.get("/embeddings")
@openapi.operation(tag=TAG, answer={"type": "array", "items": {"type": "string"}})
async def get_embeddings(request: web.Request) -> web.Response:
    """Textual inversion names (without their extension), as `embedding:NAME` takes them."""
    files = await asyncio.to_thread(MODEL_FOLDERS["embeddings"], state(request).settings)
    return web.json_response(sorted({PurePosixPath(name).with_suffix("").as_posix() for name in files}))


@comfy.get("/models")
@openapi.operation(tag=TAG, answer={"type": "array", "items": {"type": "string"}})
async def get_model_folders(request: web.Request) -> web.Response:
    """The model folders (ComfyUI's names) that our nodes read."""
    return web.json_response(list(MODEL_FOLDERS))


@comfy.get("/models/{folder}")
@openapi.operation(tag=TAG, answer={"type": "array", "items": {"type": "string"}},
                   errors={404: "not a model folder"})
async def get_models(request: web.Request) -> web.Response:
    """The models in one folder, by the names nodes take."""
    listing = MODEL_FOLDERS.get(request.match_info["folder"])
    if listing is None:
        return web.json_response({"error": f"no model folder {request.match_info['folder']!r}"}, status=404)
    return web.json_response(await asyncio.to_thread(listing, state(request).settings))


@comfy.get("/ws")
@openapi.operation(tag=TAG, answer_type="")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    """ComfyUI's websocket (status, execution_start, execution_cached, executing, progress, executed,
    execution_success, execution_error, execution_interrupted, binary previews) for clientId."""
    return await bridge(request).connect(request)


# --- where ComfyUI's /api/ paths are ours too ----------------------------------------------------

def _queue_state(ours):
    @functools.wraps(ours)
    async def handler(request: web.Request) -> web.Response:
        doc = json.loads((await ours(request)).text)
        doc.update(await asyncio.to_thread(bridge(request).queue))
        return web.json_response(doc)

    handler.__doc__ = (ours.__doc__ or "") + "\n\nAlso ComfyUI's queue_running and queue_pending."
    return handler


async def _queue_edit(request: web.Request) -> bool:
    body = await body_of(request)
    return isinstance(body, dict) and "workflow" not in body and ("clear" in body or "delete" in body)


async def _prompt_interrupt(request: web.Request) -> bool:
    body = await body_of(request)
    return isinstance(body, dict) and "prompt_id" in body


async def _comfy_socket(request: web.Request) -> bool:
    return "clientId" in request.query


def _either(is_comfy, theirs, note: str):
    """Our handler, wrapped to hand the requests `is_comfy` recognises to ComfyUI's `theirs`."""
    def wrap(ours):
        @functools.wraps(ours)
        async def handler(request: web.Request) -> web.StreamResponse:
            return await (theirs(request) if await is_comfy(request) else ours(request))

        handler.__doc__ = f"{ours.__doc__ or ''}\n\n{note}"
        return handler

    return wrap


SHARED = {
    ("GET", "/api/queue"): _queue_state,
    ("POST", "/api/queue"): _either(_queue_edit, post_queue, 'ComfyUI\'s {"clear"} and {"delete"} cancel prompts.'),
    ("POST", "/api/interrupt"): _either(_prompt_interrupt, post_interrupt, 'Or ComfyUI\'s {"prompt_id"}.'),
    ("GET", "/ws"): _either(_comfy_socket, websocket, "With ?clientId=ID: ComfyUI's websocket messages instead."),
}


def shared(table: web.RouteTableDef) -> list[web.RouteDef]:
    """Our routes, where a path is also ComfyUI's, with a handler that answers both."""
    return [web.RouteDef(r.method, r.path, SHARED[(r.method, r.path)](r.handler), r.kwargs)
            if (r.method, r.path) in SHARED else r for r in table]


def routes() -> list[web.RouteDef]:
    """ComfyUI's routes at its paths and under /api/, except those `shared` serves."""
    out = [r for r in comfy if (r.method, r.path) not in SHARED]
    out += [web.RouteDef(r.method, "/api" + r.path, r.handler, r.kwargs) for r in comfy
            if (r.method, "/api" + r.path) not in SHARED]
    return out
