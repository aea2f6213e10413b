"""The components library: subgraph definitions saved by name, to reuse in other workflows.

One JSON file per component, `{"name", "definition"}`, in the folder `components/` beside the
output folder; names follow the saved-workflow rules (server/library.py), so a name can never
leave the folder. A definition is checked before it is saved (graph/subgraphs.py); one that uses
other definitions carries them in its own `subgraphs`.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from latentgraph.graph.subgraphs import component_problems
from latentgraph.server import openapi
from latentgraph.server.library import ENTRY, delete_entry, entries, entry_path, read_entry, write
from latentgraph.server.state import failure, read_json, state

routes = web.RouteTableDef()

DEFINITION = {"type": "object", "description": "A subgraph definition (docs/protocol.md, 'Subgraphs')"}
COMPONENT = {"type": "object", "required": ["name", "definition"],
             "properties": {"name": {"type": "string"}, "definition": DEFINITION}}


def _path(request: web.Request):
    return entry_path(state(request).components, request.match_info["name"], "component")


@routes.get("/api/components")
@openapi.operation(answer={"type": "object", "properties": {"components": {"type": "array", "items": ENTRY}}})
async def list_components(request: web.Request) -> web.Response:
    """The saved components (subgraph definitions), by name."""
    return web.json_response({"components": await asyncio.to_thread(entries, state(request).components)})


@routes.get("/api/components/{name}")
@openapi.operation(answer=COMPONENT, errors={400: "not a valid name", 404: "no such component"})
async def get_component(request: web.Request) -> web.Response:
    """A saved component: its name and definition."""
    return await read_entry(_path(request), "component")


@routes.put("/api/components/{name}")
@openapi.operation(body={"type": "object", "required": ["definition"], "properties": {"definition": DEFINITION}},
                   answer=ENTRY, errors={400: "not a valid name, or not a valid subgraph definition: `errors` "
                                              "lists every problem"})
async def save_component(request: web.Request) -> web.Response:
    """Save a subgraph definition under a name (replacing any saved under that name)."""
    path = _path(request)
    body = await read_json(request)
    definition = body.get("definition") if isinstance(body, dict) else None
    problems = component_problems(path.stem, definition)
    if problems:
        raise failure(400, f"not a valid subgraph definition: {problems[0].message}", [e.to_json() for e in problems])
    await asyncio.to_thread(write, path, {"name": path.stem, "definition": definition})
    return web.json_response({"name": path.stem, "modified": path.stat().st_mtime})


@routes.delete("/api/components/{name}")
@openapi.operation(answer={"type": "object", "properties": {"deleted": {"type": "string"}}},
                   errors={400: "not a valid name", 404: "no such component"})
async def delete_component(request: web.Request) -> web.Response:
    """Delete a saved component."""
    return delete_entry(_path(request), "component")

