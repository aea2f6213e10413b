"""What the request handlers share: the server's state and the JSON error answers."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from latentgraph.graph import limits
from latentgraph.graph.errors import WorkflowFormatError
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.server.events import Broadcaster
from latentgraph.server.history import History
from latentgraph.server.jobs import JobQueue


@dataclass
class Server:
    settings: Settings
    executor: Executor
    history: History
    jobs: JobQueue
    events: Broadcaster
    library: Path  # saved workflows
    max_upload_bytes: int
    components: Path  # saved subgraph definitions
    max_upload_pixels: int = 64_000_000  # width x height, read from the header before decoding
    sweeps: Any = None  # server.sweeps.Sweeps
    webhooks: Any = None  # server.webhooks.Webhooks


SERVER = web.AppKey("server", Server)


def state(request: web.Request) -> Server:
    return request.app[SERVER]


_ERRORS = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 409: web.HTTPConflict}


def failure(status: int, message: str, errors: list[dict] | None = None) -> web.HTTPException:
    """An HTTP error whose body is the protocol's error object: {"error", "errors"?}."""
    body = {"error": message, **({"errors": errors} if errors is not None else {})}
    return _ERRORS[status](text=json.dumps(body), content_type="application/json")


def body_limits(request: web.Request) -> limits.Limits:
    """The server's limits on a request body: one more level of nesting is allowed for the envelope
    ({"workflow": ...}, ComfyUI's {"prompt": ...})."""
    bounds = state(request).settings.limits
    return dataclasses.replace(bounds, max_depth=bounds.max_depth + 1)


async def read_json(request: web.Request) -> object:
    """The body as JSON, within `body_limits` (else a 400)."""
    try:
        return limits.parse(await request.read(), body_limits(request))
    except WorkflowFormatError as exc:
        raise failure(400, f"the request body is not JSON we accept: {exc}") from None


def inside(root: Path, name: str) -> Path | None:
    """root/name if it is an existing file inside root (after following links), else None."""
    base = root.resolve()
    path = (base / name).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None
