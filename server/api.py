"""The JSON API: catalog, validation, the queue, interrupt, history and output images."""
from __future__ import annotations

import asyncio
import re

from aiohttp import web

from latentgraph.graph.errors import GraphError
from latentgraph.graph.workflow import load_workflow
from latentgraph.nodes import checkpoint_info, folders
from latentgraph.nodes.spec import catalog
from latentgraph.server import openapi
from latentgraph.server.jobs import CLIENT_ID
from latentgraph.server.openapi import ref
from latentgraph.server.state import failure, inside, read_json, state

routes = web.RouteTableDef()

ERRORS = {"type": "array", "items": ref("GraphError")}
WORKFLOW_BODY = {"type": "object", "required": ["workflow"],
                 "properties": {"workflow": {"type": "object", "description": "our format or ComfyUI's"},
                                "client_id": {"type": "string"}}}
IMAGE_ID = re.compile(r"[0-9a-f]{32}")


def load(workflow: object) -> tuple[dict | None, list[GraphError]]:
    """A workflow document from a request, in our format, or the reason it is not one."""
    if not isinstance(workflow, dict):  # a string would be read as a file path by load_workflow
        return None, [GraphError("bad_format", "'workflow' must be a JSON object")]
    try:
        return load_workflow(workflow), []
    except Exception as exc:  # format errors, and whatever a converter raises on a malformed file
        return None, [GraphError("bad_format", f"not a workflow we can read: {exc}")]


def client_fields(server, body: dict, id_field: str) -> tuple[str | None, str | None, str | None]:
    """A queuing request's client_id, its own id (`id_field`) and callback_url, checked (400 otherwise)."""
    client_id, chosen, callback = body.get("client_id"), body.get(id_field), body.get("callback_url")
    if chosen is not None and (not isinstance(chosen, str) or not CLIENT_ID.fullmatch(chosen)):
        raise failure(400, f"{id_field} must be 1 to 128 letters, digits, _ or -, starting with a letter or digit")
    if callback is not None and (problem := server.webhooks.problem(callback)):
        raise failure(400, problem)
    return client_id if isinstance(client_id, str) else None, chosen, callback


def check(server, workflow: object) -> tuple[dict | None, list[dict]]:
    """Load and validate (blocking: folder listings); errors as protocol objects."""
    doc, errors = load(workflow)
    if doc is not None:
        errors = server.executor.validate(doc)
    return doc, [e.to_json() for e in errors]


@routes.get("/api/nodes")
@openapi.operation(answer=ref("Catalog"))
async def nodes(request: web.Request) -> web.Response:
    """The node catalog, with folder-dependent choices (checkpoints, input images) filled in."""
    settings = state(request).settings
    doc = await asyncio.to_thread(catalog, lambda inp: folders.resolve_choices(settings, inp.choices_from))
    return web.json_response(doc)


@routes.get("/api/checkpoints")
@openapi.operation(answer={"type": "object", "properties": {
    "checkpoints": {"type": "array", "items": {"type": "string"}},
    "details": {"type": "object", "description": "name -> what is known of it, read from its configs",
                "additionalProperties": {"type": "object", "properties": {
                    "family": {"type": "string", "description": "sd15, sd2, sdxl, sdxl_refiner, ..."},
                    "resolution": {"type": "array", "items": {"type": "integer"}, "description": "[w, h]"}}}}}})
async def checkpoints(request: web.Request) -> web.Response:
    """Checkpoint names, as CheckpointLoaderSimple's ckpt_name accepts them, with the family and
    native resolution of those whose configs say (absent where unknown)."""
    def listing() -> dict:
        found = folders.list_checkpoints(state(request).settings, include_pickles=True)
        details = {name: info for name, path in found.items() if (info := checkpoint_info.describe(path))}
        return {"checkpoints": sorted(found), "details": details}

    return web.json_response(await asyncio.to_thread(listing))


@routes.post("/api/validate")
@openapi.operation(body=WORKFLOW_BODY, answer={"type": "object", "properties": {
    "valid": {"type": "boolean"}, "errors": ERRORS}}, errors={400: "the body is not JSON"})
async def validate(request: web.Request) -> web.Response:
    """Validate a workflow without running it: every error, with node id and input."""
    body = await read_json(request)
    workflow = body.get("workflow") if isinstance(body, dict) else None
    _, errors = await asyncio.to_thread(check, state(request), workflow)
    return web.json_response({"valid": not errors, "errors": errors})


QUEUE_BODY = {"type": "object", "required": ["workflow"], "properties": {
    **WORKFLOW_BODY["properties"],
    "job_id": {"type": "string", "description": "the client's own id (letters, digits, _ and -, at most 128): "
                                                "queuing the same id again answers the existing job"},
    "callback_url": {"type": "string", "description": "POSTed once when the job ends: {\"type\": "
                                                     "\"job_finished\", \"job\": Job without its workflow}; "
                                                     "loopback only unless serve --allow-callback-hosts"}}}


@routes.post("/api/queue")
@openapi.operation(body=QUEUE_BODY, answer={"type": "object", "properties": {
    "job_id": {"type": "string"},
    "position": {"type": ["integer", "null"], "description": "jobs ahead of this one (null: it already ended)"},
    "duplicate": {"type": "boolean", "description": "the job_id was known: this is the existing job"}}},
    errors={400: "the workflow is invalid (`errors` lists every problem), or a bad job_id or callback_url",
            409: "the server is shutting down"})
async def queue_job(request: web.Request) -> web.Response:
    """Queue a workflow (our format or ComfyUI's); it is validated first and refused with all its errors."""
    server = state(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise failure(400, "expected {\"workflow\": ...}")
    client_id, job_id, callback = client_fields(server, body, "job_id")
    doc = None  # a known job_id needs no workflow: the existing job is the answer
    if job_id is None or not await asyncio.to_thread(server.jobs.knows, job_id):
        doc, errors = await asyncio.to_thread(check, server, body.get("workflow"))
        if errors:
            count = len(errors)
            raise failure(400, f"the workflow has {count} error{'s' * (count > 1)}: {errors[0]['message']}", errors)
    try:
        job, position, new = server.jobs.submit(doc, client_id, job_id=job_id, callback_url=callback)
    except RuntimeError as exc:  # shutting down
        raise failure(409, str(exc)) from None
    return web.json_response({"job_id": job.job_id, "position": position, "duplicate": not new})


@routes.get("/api/queue")
@openapi.operation(answer={"type": "object", "properties": {
    "running": {"oneOf": [ref("Job"), {"type": "null"}]}, "pending": {"type": "array", "items": ref("Job")},
    "running_jobs": {"type": "array", "items": ref("Job"),
                     "description": "every running job, in the order they started (several on a worker pool)"}}})
async def queue_state(request: web.Request) -> web.Response:
    """The running job (the first started, when a worker pool runs several: see `running_jobs`) and
    the pending ones, in the order they will run."""
    running, pending = state(request).jobs.snapshot()
    return web.json_response({"running": running[0].to_json() if running else None,
                              "running_jobs": [job.to_json() for job in running],
                              "pending": [job.to_json() for job in pending]})


@routes.delete("/api/queue/{job_id}")
@openapi.operation(answer={"type": "object", "properties": {"cancelled": {"type": "string"}}},
                   errors={404: "no such pending job", 409: "the job is running (use /api/interrupt)"})
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a pending job."""
    job_id = request.match_info["job_id"]
    problem = state(request).jobs.cancel(job_id)
    if problem == "running":
        raise failure(409, f"job {job_id} is running: interrupt it instead")
    if problem is not None:
        raise failure(404, f"no pending job {job_id}")
    return web.json_response({"cancelled": job_id})


@routes.delete("/api/queue")
@openapi.operation(answer={"type": "object",
                           "properties": {"cancelled": {"type": "array", "items": {"type": "string"}}}})
async def clear_queue(request: web.Request) -> web.Response:
    """Cancel every pending job (the running one goes on)."""
    return web.json_response({"cancelled": state(request).jobs.clear()})


@routes.post("/api/interrupt")
@openapi.operation(answer={"type": "object", "properties": {"interrupted": {"type": ["string", "null"]}}})
async def interrupt(request: web.Request) -> web.Response:
    """Interrupt the running job at its next node or sampler step.

    An optional JSON body {"job_id": ID} interrupts only if that job is the one running."""
    body = await read_json(request) if (await request.read()).strip() else {}
    job_id = body.get("job_id") if isinstance(body, dict) else None
    interrupted = state(request).jobs.interrupt(job_id if isinstance(job_id, str) else None)
    return web.json_response({"interrupted": interrupted})


@routes.get("/api/jobs")
@openapi.operation(query={"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                   answer={"type": "object", "properties": {"jobs": {"type": "array", "items": ref("Job")}}})
async def history(request: web.Request) -> web.Response:
    """Jobs, newest first, kept across restarts."""
    return web.json_response({"jobs": state(request).history.recent(query_limit(request, 100))})


def query_limit(request: web.Request, default: int) -> int:
    """The `limit` query parameter, clamped to 1..1000 (400 if it is not a number)."""
    try:
        return min(max(int(request.query.get("limit", default)), 1), 1000)
    except ValueError:
        raise failure(400, "limit must be a whole number") from None


@routes.get("/api/jobs/{job_id}")
@openapi.operation(answer=ref("Job"), errors={404: "no such job"})
async def history_job(request: web.Request) -> web.Response:
    """One job (pending, running or finished)."""
    server, job_id = state(request), request.match_info["job_id"]
    live = server.jobs.find(job_id)
    doc = live.to_json() if live else server.history.get(job_id)
    if doc is None:
        raise failure(404, f"no job {job_id}")
    return web.json_response(doc)


@routes.get("/api/images/{image_id}")
@openapi.operation(answer_type="image/png", errors={404: "no such image"})
async def image(request: web.Request) -> web.FileResponse:
    """An image a job produced, by the id the server issued (never by path)."""
    server, image_id = state(request), request.match_info["image_id"]
    found = server.history.image(image_id) if IMAGE_ID.fullmatch(image_id) else None
    root = {"output": server.settings.output, "temp": server.settings.temp}.get(found[0]) if found else None
    path = inside(root, found[1]) if root else None
    if path is None:
        raise failure(404, f"no image {image_id}")
    return web.FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


@routes.get("/api/openapi.json")
@openapi.operation(answer={"type": "object", "description": "this document"})
async def openapi_document(request: web.Request) -> web.Response:
    """This API as an OpenAPI 3.1 document."""
    return web.json_response(openapi.document(request.app))
