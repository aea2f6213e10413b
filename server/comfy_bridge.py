"""The ComfyUI side of the job queue: prompt ids and numbers, the queue and history in ComfyUI's
shapes, and our job events translated into ComfyUI's websocket messages (docs/comfyui.md,
"ComfyUI's server protocol").

It reads only JobQueue's public methods, the history and the event stream, so the queue knows
nothing of ComfyUI. As in ComfyUI, messages about a prompt go to the websocket clients whose
clientId is the prompt's client_id (`execution_interrupted` and `status` go to every client), and a
live preview is a binary frame: event type 1 (PREVIEW_IMAGE) and image type 1 (JPEG), each a 4-byte
big-endian integer, then the JPEG.
"""
from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from aiohttp import web

from latentgraph.graph.comfyui_export import to_api
from latentgraph.nodes import registry
from latentgraph.server.events import Broadcaster
from latentgraph.server.jobs import JobQueue

PREVIEW_IMAGE, JPEG = 1, 1  # ComfyUI's binary event type and image type
REMEMBERED = 10_000  # prompts whose ComfyUI details (number, prompt, client) are kept, as ComfyUI's history size
FINISHED = ("success", "error", "interrupted")  # what ComfyUI's history holds (a cancelled prompt never ran)


@dataclass
class Prompt:
    """What ComfyUI clients know of one job."""

    job_id: str
    prompt_id: str
    number: int
    client_id: str | None
    api: dict | None = None  # the prompt as a client sent it to /prompt
    extra_data: dict = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)  # nodes run (not cached) so far
    cached_sent: bool = False
    node: str | None = None  # the node running now
    node_type: str | None = None
    stopped_at: str | None = None  # where an interrupt stopped it


def ms(seconds: float | None) -> int:
    return int((seconds if seconds is not None else time.time()) * 1000)


def image_ref(image: dict) -> dict:
    """Our image entry as ComfyUI's {filename, subfolder, type}."""
    path = PurePosixPath(image["filename"])
    return {"filename": path.name, "subfolder": "" if str(path.parent) == "." else str(path.parent),
            "type": image["kind"]}


def error_data(prompt_id: str, error: dict, executed: list[str], timestamp: int) -> dict:
    """ComfyUI's execution_error message from one of our errors (no traceback: the message names the node)."""
    return {"prompt_id": prompt_id, "node_id": error.get("node_id"), "node_type": error.get("node_type"),
            "executed": list(executed), "exception_message": error["message"],
            "exception_type": f"latentgraph.{error['kind']}", "traceback": [], "current_inputs": {},
            "current_outputs": {}, "timestamp": timestamp}


def output_nodes(workflow: dict) -> list[str]:
    specs = registry()
    return [node_id for node_id, node in workflow["nodes"].items()
            if node.get("mode", "active") == "active" and getattr(specs.get(node.get("type")), "output_node", False)]


class ComfyBridge:
    """Lives on the event loop: `on_event` is called there with every job event, in order."""

    def __init__(self, jobs: JobQueue):
        self.jobs = jobs
        self.sockets = Broadcaster()
        self._prompts: OrderedDict[str, Prompt] = OrderedDict()  # job id -> Prompt
        self._job_ids: dict[str, str] = {}  # client-chosen prompt id -> job id
        self._number = 0
        self.hidden: set[str] = set()  # job ids taken out of ComfyUI's history view (POST /history)

    # --- prompt ids and numbers ----------------------------------------------------------------

    def adopt(self, job_id: str, client_id: str | None, prompt_id: str | None = None, api: dict | None = None,
              extra_data: dict | None = None) -> Prompt:
        """Record a job as ComfyUI clients see it (its number counts up in queue order)."""
        known = self._prompts.get(job_id)
        if known is not None:
            return known
        prompt = Prompt(job_id, prompt_id or self.default_prompt_id(job_id), self._number, client_id, api,
                        dict(extra_data or {}, **({"client_id": client_id} if client_id else {})))
        self._number += 1
        self._prompts[job_id] = prompt
        if prompt_id:
            self._job_ids[prompt_id] = job_id
        while len(self._prompts) > REMEMBERED:
            old = self._prompts.popitem(last=False)[1]
            self._job_ids.pop(old.prompt_id, None)
        return prompt

    @staticmethod
    def default_prompt_id(job_id: str) -> str:
        """A job's prompt id when the client chose none: the job id as a UUID, as ComfyUI writes them."""
        try:
            return str(uuid.UUID(hex=job_id))
        except ValueError:
            return job_id

    def job_id(self, prompt_id: str) -> str:
        if prompt_id in self._job_ids:
            return self._job_ids[prompt_id]
        try:
            return uuid.UUID(prompt_id).hex
        except ValueError:
            return prompt_id

    def prompt_id(self, job_id: str) -> str:
        known = self._prompts.get(job_id)
        return known.prompt_id if known else self.default_prompt_id(job_id)

    # --- queue and history in ComfyUI's shapes -------------------------------------------------

    def queue_item(self, job: dict) -> list:
        """[number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        known = self._prompts.get(job["job_id"])
        extra = known.extra_data if known else ({"client_id": job["client_id"]} if job.get("client_id") else {})
        return [known.number if known else 0, self.prompt_id(job["job_id"]),
                known.api if known and known.api is not None else to_api(job["workflow"]), extra,
                output_nodes(job["workflow"])]

    def queue(self) -> dict:
        running, pending = self.jobs.snapshot()
        return {"queue_running": [self.queue_item(job.to_json()) for job in running],
                "queue_pending": [self.queue_item(job.to_json()) for job in pending]}

    def status(self) -> dict:
        running, pending = self.jobs.snapshot()
        return {"exec_info": {"queue_remaining": len(pending) + len(running)}}

    def history_entry(self, job: dict) -> dict:
        """ComfyUI's history entry of a finished job: prompt, outputs, status (with its messages), meta."""
        prompt_id = self.prompt_id(job["job_id"])
        outputs: dict[str, dict] = {}
        for image in job["images"]:
            outputs.setdefault(image["node_id"], {"images": []})["images"].append(image_ref(image))
        nodes = job.get("nodes") or {}
        executed = [n for n, info in nodes.items() if info["status"] == "executed"]
        messages = [["execution_start", {"prompt_id": prompt_id, "timestamp": ms(job["started"])}],
                    ["execution_cached", {"nodes": [n for n, info in nodes.items() if info["status"] == "cached"],
                                          "prompt_id": prompt_id, "timestamp": ms(job["started"])}]]
        if job["status"] == "success":
            messages.append(["execution_success", {"prompt_id": prompt_id, "timestamp": ms(job["finished"])}])
        elif job["status"] == "interrupted":
            known = self._prompts.get(job["job_id"])
            node_id = known.stopped_at if known else None
            node_type = (job["workflow"]["nodes"].get(node_id) or {}).get("type") if node_id else None
            messages.append(["execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                                       "node_type": node_type, "executed": executed,
                                                       "timestamp": ms(job["finished"])}])
        elif job["errors"]:
            messages.append(["execution_error", error_data(prompt_id, job["errors"][0], executed,
                                                           ms(job["finished"]))])
        return {"prompt": self.queue_item(job), "outputs": outputs,
                "status": {"status_str": "success" if job["status"] == "success" else "error",
                           "completed": job["status"] == "success", "messages": messages},
                "meta": {node_id: {"node_id": node_id, "display_node": node_id, "parent_node": None,
                                   "real_node_id": node_id} for node_id in outputs}}

    def shows(self, job: dict | None) -> bool:
        """Whether ComfyUI's history holds this job."""
        return job is not None and job["status"] in FINISHED and job["job_id"] not in self.hidden

    # --- websocket messages --------------------------------------------------------------------

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        """A ComfyUI client's websocket: `status` (with its session id) first, then its prompts' messages."""
        sid = request.query.get("clientId") or uuid.uuid4().hex
        greeting = [{"type": "status", "data": {"status": self.status(), "sid": sid}}]
        running = next((p for p in self._prompts.values() if p.client_id == sid and p.node is not None), None)
        if running is not None:  # a client that reconnects mid-run learns where it is, as in ComfyUI
            greeting.append(self._message("executing", running, node=running.node, display_node=running.node))
        return await self.sockets.handle(request, key=sid, greeting=greeting)

    @staticmethod
    def _message(kind: str, prompt: Prompt, **data) -> dict:
        return {"type": kind, "data": {**data, "prompt_id": prompt.prompt_id}}

    def _send(self, prompt: Prompt | None, kind: str, **data) -> None:
        if prompt is None:  # broadcast
            self.sockets.send(json.dumps({"type": kind, "data": data}))
        elif prompt.client_id is not None:  # ComfyUI sends a prompt's messages to its client only
            self.sockets.send(json.dumps(self._message(kind, prompt, **data)), to=prompt.client_id)

    def _cached(self, prompt: Prompt, node_ids: list[str]) -> None:
        if not prompt.cached_sent:  # ComfyUI always sends it, before the first node runs
            prompt.cached_sent = True
            self._send(prompt, "execution_cached", nodes=node_ids, timestamp=ms(None))

    def on_event(self, event: dict) -> None:
        kind, job_id = event["type"], event.get("job_id")
        if kind == "queue":
            self._send(None, "status", status=self.status())
            return
        if kind == "queued":
            self.adopt(job_id, event.get("client_id"))
            return
        prompt = self._prompts.get(job_id)
        if prompt is None:
            return
        if kind == "started":
            self._send(prompt, "execution_start", timestamp=ms(None))
        elif kind == "cached":
            self._cached(prompt, event["node_ids"])
        elif kind == "executing":
            self._cached(prompt, [])
            prompt.node, prompt.node_type = event["node_id"], event["node_type"]
            self._send(prompt, "executing", node=prompt.node, display_node=prompt.node)
        elif kind == "progress":
            self._send(prompt, "progress", value=event["step"], max=event["total"], node=event["node_id"])
        elif kind == "preview" and prompt.client_id is not None:
            jpeg = base64.b64decode(event["image"].partition(",")[2])
            self.sockets.send(struct.pack(">II", PREVIEW_IMAGE, JPEG) + jpeg, to=prompt.client_id)
        elif kind == "executed":
            self._cached(prompt, [])
            if not event.get("cached"):
                prompt.executed.append(event["node_id"])
            if event.get("images"):
                self._send(prompt, "executed", node=event["node_id"], display_node=event["node_id"],
                           output={"images": [image_ref(image) for image in event["images"]]})
        elif kind == "error":
            self._cached(prompt, [])
            error = {k: v for k, v in event.items() if k not in ("type", "job_id")}
            self._send(prompt, "execution_error", **error_data(prompt.prompt_id, error, prompt.executed, ms(None)))
        elif kind == "interrupted":
            prompt.stopped_at = prompt.node
            self._send(None, "execution_interrupted", prompt_id=prompt.prompt_id, node_id=prompt.node,
                       node_type=prompt.node_type, executed=list(prompt.executed), timestamp=ms(None))
        elif kind == "finished" and event["status"] in FINISHED:
            if event["status"] == "success":
                self._cached(prompt, [])
                self._send(prompt, "execution_success", timestamp=ms(None))
            prompt.node = None
            self._send(prompt, "executing", node=None)  # the end of the prompt, as ComfyUI marks it
