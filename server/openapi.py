"""The OpenAPI 3.1 document, written from the application's own route table.

Each handler carries its description (`@operation(...)`: summary from the docstring, request body,
answers); `document(app)` walks `app.router`, so a route cannot exist without appearing here.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web

import latentgraph.graph

JSON = "application/json"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def operation(*, body: dict | None = None, form: dict | None = None, answer: dict | None = None,
              answer_type: str = JSON, errors: dict[int, str] | None = None, query: dict | None = None,
              tag: str = "api"):
    """Describe a handler: JSON `body` schema or multipart `form` fields, the 200 `answer` schema
    (or `answer_type` for non-JSON answers), error statuses, query parameters."""

    def attach(handler):
        handler.openapi = {"body": body, "form": form, "answer": answer, "answer_type": answer_type,
                           "errors": errors or {}, "query": query or {}, "tag": tag}
        return handler

    return attach


def _operation(method: str, path: str, handler) -> dict:
    spec = getattr(handler, "openapi", {})
    doc = (handler.__doc__ or "").strip()
    summary, _, description = doc.partition("\n")
    op: dict[str, Any] = {"operationId": handler.__name__, "summary": summary.strip(), "tags": [spec.get("tag", "api")]}
    if description.strip():
        op["description"] = " ".join(description.split())
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in re.findall(r"{(\w+)[}:]", path)]
    params += [{"name": name, "in": "query", "required": False, "schema": schema}
               for name, schema in spec.get("query", {}).items()]
    if params:
        op["parameters"] = params
    if spec.get("body") is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": spec["body"]}}}
    elif spec.get("form") is not None:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": list(spec["form"]), "properties": spec["form"]}}}}
    answer_type = spec.get("answer_type", JSON)
    ok: dict[str, Any] = {"description": "OK"}
    if answer_type == JSON:
        ok["content"] = {JSON: {"schema": spec.get("answer") or {"type": "object"}}}
    elif answer_type:
        ok["content"] = {answer_type: {}}
    op["responses"] = {"200": ok, **{str(status): {"description": text, "content": {JSON: {"schema": ref("Failure")}}}
                                     for status, text in spec.get("errors", {}).items()}}
    return op


def document(app: web.Application) -> dict:
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method in ("HEAD", "*") or path is None or not hasattr(route.handler, "openapi"):
            continue
        clean = re.sub(r"{(\w+):[^}]+}", r"{\1}", path)
        paths.setdefault(clean, {})[route.method.lower()] = _operation(route.method, path, route.handler)
    return {
        "openapi": "3.1.0",
        "info": {"title": "latentgraph", "version": "1",
                 "description": "The latentgraph server API. Events stream over the websocket at /ws; "
                                "see docs/protocol.md for the event list."},
        "paths": dict(sorted(paths.items())),
        "security": [{}, {"token": []}],  # the token only when bound to a non-loopback address
        "components": {
            "schemas": SCHEMAS | {"Workflow": _workflow_schema()},
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description":
                                          "Needed only when the server binds a non-loopback address."}},
        },
    }


@lru_cache(maxsize=1)
def _workflow_schema() -> dict:
    path = Path(latentgraph.graph.__file__).resolve().parent / "workflow.schema.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"type": "object", "description": "A workflow (docs/protocol.md)."}


NULLABLE_STRING = {"type": ["string", "null"]}
TIME = {"type": ["number", "null"], "description": "seconds since the Unix epoch"}

SCHEMAS: dict[str, dict] = {
    "GraphError": {
        "type": "object", "required": ["kind", "message", "node_id", "node_type", "input"],
        "properties": {"kind": {"type": "string"}, "message": {"type": "string"}, "node_id": NULLABLE_STRING,
                       "node_type": NULLABLE_STRING, "input": NULLABLE_STRING}},
    "Failure": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string"}, "errors": {"type": "array", "items": ref("GraphError")}}},
    "JobImage": {
        "type": "object", "required": ["id", "node_id", "url"],
        "properties": {"id": {"type": "string"}, "node_id": {"type": "string"}, "url": {"type": "string"},
                       "filename": {"type": "string", "description": "name inside the output (or temp) folder"},
                       "kind": {"enum": ["output", "temp"]}}},
    "Job": {
        "type": "object", "required": ["job_id", "status"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"enum": ["pending", "running", "success", "error", "interrupted", "cancelled"]},
            "client_id": NULLABLE_STRING, "created": TIME, "started": TIME, "finished": TIME,
            "workflow": ref("Workflow"),
            "images": {"type": "array", "items": ref("JobImage")},
            "errors": {"type": "array", "items": ref("GraphError")},
            "nodes": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"status": {"enum": ["executed", "cached", "error"]},
                                                 "seconds": {"type": "number"}}}},
            "sweep_id": NULLABLE_STRING, "sweep_job": {"type": ["integer", "null"],
                                                       "description": "its index in the sweep's run order"},
            "callback_url": NULLABLE_STRING,
            "callback": {"type": ["object", "null"], "description": "the webhook's outcome: {status, error?, at}"},
            "attempts": {"type": "integer", "description": "times it started"},
            "resumed": {"type": "boolean", "description": "queued again after a stop interrupted it"},
            "resumable": {"type": "boolean"}, "worker": NULLABLE_STRING}},
    "Catalog": {"type": "object", "description": "The node catalog (docs/protocol.md, 'Node catalog')."},
}
