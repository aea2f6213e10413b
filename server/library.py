"""The saved-workflow library: one JSON file per workflow in a folder beside the output folder.

Names are checked against a strict pattern before they become file names, so a name can never
leave the folder (no separators, no leading dot, no '..').
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from pathlib import Path

from aiohttp import web

from latentgraph.server import openapi
from latentgraph.server.api import load
from latentgraph.server.openapi import ref
from latentgraph.server.state import failure, read_json, state

routes = web.RouteTableDef()

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.()-]{0,99}")
ENTRY = {"type": "object", "properties": {"name": {"type": "string"}, "modified": {"type": "number"}}}


def entry_path(folder: Path, name: str, what: str = "workflow") -> Path:
    if not NAME.fullmatch(name) or ".." in name or name.endswith((" ", ".")):
        raise failure(400, f"{name!r} is not a valid {what} name: use letters, digits, spaces and "
                           "_ . ( ) - (at most 100, starting with a letter or digit)")
    return folder / f"{name}.json"


def entries(folder: Path) -> list[dict]:
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        if NAME.fullmatch(path.stem) and path.is_file():
            found.append({"name": path.stem, "modified": path.stat().st_mtime})
    return found


def write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{uuid.uuid4().hex}.part"  # a crash never leaves half a workflow
    partial.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


async def read_entry(path: Path, what: str) -> web.Response:
    """A saved file as it was saved; 404 naming `what` if there is none."""
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except FileNotFoundError:
        raise failure(404, f"no saved {what} {path.stem!r}") from None
    return web.Response(text=text, content_type="application/json")


def delete_entry(path: Path, what: str) -> web.Response:
    try:
        path.unlink()
    except FileNotFoundError:
        raise failure(404, f"no saved {what} {path.stem!r}") from None
    return web.json_response({"deleted": path.stem})


@routes.get("/api/workflows")
@openapi.operation(answer={"type": "object", "properties": {"workflows": {"type": "array", "items": ENTRY}}})
async def list_workflows(request: web.Request) -> web.Response:
    """The saved workflows, by name."""
    return web.json_response({"workflows": await asyncio.to_thread(entries, state(request).library)})


@routes.get("/api/workflows/{name}")
@openapi.operation(answer=ref("Workflow"), errors={400: "not a valid name", 404: "no such workflow"})
async def get_workflow(request: web.Request) -> web.Response:
    """A saved workflow, as it was saved."""
    return await read_entry(entry_path(state(request).library, request.match_info["name"]), "workflow")


@routes.put("/api/workflows/{name}")
@openapi.operation(body=ref("Workflow"), answer=ENTRY, errors={400: "not a valid name, or not a workflow"})
async def save_workflow(request: web.Request) -> web.Response:
    """Save a workflow under a name (replacing any saved under that name); ComfyUI's are converted."""
    server = state(request)
    path = entry_path(server.library, request.match_info["name"])
    doc, errors = load(await read_json(request))
    if doc is None:
        raise failure(400, errors[0].message, [e.to_json() for e in errors])
    await asyncio.to_thread(write, path, doc)
    return web.json_response({"name": path.stem, "modified": path.stat().st_mtime})


@routes.delete("/api/workflows/{name}")
@openapi.operation(answer={"type": "object", "properties": {"deleted": {"type": "string"}}},
                   errors={400: "not a valid name", 404: "no such workflow"})
async def delete_workflow(request: web.Request) -> web.Response:
    """Delete a saved workflow."""
    return delete_entry(entry_path(state(request).library, request.match_info["name"]), "workflow")
