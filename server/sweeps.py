"""Sweeps over HTTP: one POST checks a sweep and queues all its jobs; the grid is drawn when the
last of them ends (graph/sweep.py and graph/grid.py do the work; docs/protocol.md, 'Sweeps').

A sweep is recorded in the history with its jobs, so it survives a restart like they do: its
pending jobs run again, and the grid is drawn once every job has ended, whenever that is.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from latentgraph.graph.settings import Settings
from latentgraph.graph.sweep import MAX_JOBS, SweepInvalid, plan_sweep
from latentgraph.server import openapi
from latentgraph.server.api import ERRORS, client_fields, load, query_limit
from latentgraph.server.history import History
from latentgraph.server.jobs import FINISHED, Job, JobQueue, image_url
from latentgraph.server.openapi import ref
from latentgraph.server.state import failure, inside, read_json, state
from latentgraph.server.webhooks import Webhooks

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
GRID_FOLDER = "grids"  # inside the output folder


class Sweeps:
    """Records sweeps, follows their jobs' ends (`sweep_progress`), draws the grid (`sweep_finished`)."""

    def __init__(self, settings: Settings, history: History, jobs: JobQueue, publish: Callable[[dict], None],
                 webhooks: Webhooks, max_jobs: int = MAX_JOBS):
        self.settings, self.history, self.jobs, self.webhooks = settings, history, jobs, webhooks
        self.max_jobs = max_jobs
        self._publish = publish
        self._lock = threading.Lock()  # one decision at a time about a sweep's end
        jobs.on_finished(self._job_ended)

    def submit(self, plan, client_id: str | None, sweep_id: str | None, callback_url: str | None,
               grid: bool) -> tuple[dict, int]:
        """Record the sweep and queue its jobs (in run order). Returns its record and the position."""
        sweep_id = sweep_id or uuid.uuid4().hex
        # "SWEEP.N": a dot, which ids that clients choose cannot hold, so these never collide with theirs.
        jobs = [Job(f"{sweep_id}.{job.index}", job.workflow, client_id, sweep_id=sweep_id, sweep_job=job.index)
                for job in plan.jobs]
        record = {"sweep_id": sweep_id, "client_id": client_id, "created": time.time(), "finished": None,
                  "status": "queued", "workflow": plan.workflow, "sweep": plan.sweep.to_json(),
                  **plan.describe(), "total": len(jobs), "grid": None, "make_grid": grid,
                  "callback_url": callback_url, "callback": None}
        for entry, job in zip(record["jobs"], jobs):
            entry["job_id"] = job.job_id
        self.history.save_sweep(record)
        event = {"type": "sweep_queued", "job_id": None, "sweep_id": sweep_id, "client_id": client_id,
                 "job_ids": [job.job_id for job in jobs], "total": len(jobs)}
        try:
            return record, self.jobs.submit_many(jobs, event)
        except RuntimeError:  # the server is shutting down: nothing was queued
            record.update(status="finished", finished=time.time(), counts={})
            self.history.save_sweep(record)
            raise

    def describe(self, sweep_id: str, with_jobs: bool = True) -> dict | None:
        """The sweep's record with where it stands: `status`, `counts` and, per job, its status and images."""
        record = self.history.get_sweep(sweep_id)
        if record is None:
            return None
        counts = self.history.sweep_counts(sweep_id)
        ended = sum(n for status, n in counts.items() if status in FINISHED)
        if record["status"] != "finished":
            record["status"] = "running" if counts.get("running") or ended else "queued"
        record["counts"] = counts
        record.pop("make_grid", None)
        if with_jobs:
            live = {doc["job_id"]: doc for doc in self.history.sweep_jobs(sweep_id)}
            for entry in record["jobs"]:
                doc = live.get(entry["job_id"], {})
                entry.update(status=doc.get("status"), images=doc.get("images", []), errors=doc.get("errors", []))
        else:
            record.pop("jobs")
            record.pop("workflow")
        return record

    def cancel(self, sweep_id: str) -> list[str]:
        return self.jobs.cancel_where(lambda job: job.sweep_id != sweep_id, "cancelled before it ran: its sweep "
                                                                           "was cancelled")

    def finish_leftovers(self) -> None:
        """Sweeps whose jobs all ended while no server was there to draw the grid (a crash)."""
        for sweep_id in self.history.unfinished_sweeps():
            self._maybe_finish(sweep_id)

    # --- on a dispatcher thread, after each job's end ------------------------------------------

    def _job_ended(self, job: Job) -> None:
        if job.sweep_id is None:
            return
        counts = self.history.sweep_counts(job.sweep_id)
        record = self.history.get_sweep(job.sweep_id)
        if record is None:
            return
        done = sum(n for status, n in counts.items() if status in FINISHED)
        self._publish({"type": "sweep_progress", "job_id": job.job_id, "sweep_id": job.sweep_id, "done": done,
                       "total": record["total"], "counts": counts})
        self._maybe_finish(job.sweep_id)

    def _maybe_finish(self, sweep_id: str) -> None:
        with self._lock:
            record = self.history.get_sweep(sweep_id)
            if record is None or record["status"] == "finished":
                return
            counts = self.history.sweep_counts(sweep_id)
            if sum(n for status, n in counts.items() if status in FINISHED) < record["total"]:
                return  # cheap: a big sweep's jobs are only read once they have all ended
            docs = self.history.sweep_jobs(sweep_id)
            if any(doc["status"] not in FINISHED or doc.get("resumable") for doc in docs):
                return
            by_id = {doc["job_id"]: doc for doc in docs}
            if record.get("make_grid", True) and any(doc["status"] == "success" for doc in docs):
                try:
                    record["grid"] = self._draw(record, by_id)
                except Exception as exc:  # a picture deleted meanwhile: the sweep still ends
                    log.exception("sweep %s: drawing the grid failed", sweep_id)
                    record["grid_error"] = f"{type(exc).__name__}: {exc}"
            counts: dict[str, int] = {}
            for doc in docs:
                counts[doc["status"]] = counts.get(doc["status"], 0) + 1
            record.update(status="finished", finished=time.time(), counts=counts)
            self.history.save_sweep(record)
        self._publish({"type": "sweep_finished", "job_id": None, "sweep_id": sweep_id, "status": "finished",
                       "counts": counts, "grid": record["grid"]})
        if record.get("callback_url"):
            summary = {k: v for k, v in record.items() if k not in ("workflow", "jobs", "make_grid")}
            self.webhooks.send(record["callback_url"], {"type": "sweep_finished", "sweep": summary},
                               lambda outcome: self._record_callback(sweep_id, outcome))

    def _draw(self, record: dict, jobs: dict[str, dict]) -> dict:
        from latentgraph.graph import grid

        folders = {"output": self.settings.output, "temp": self.settings.temp}
        cells = {}
        for entry in record["jobs"]:
            doc = jobs.get(entry["job_id"], {})
            if doc.get("status") != "success":
                cells[tuple(entry["coords"])] = ": ".join([doc.get("status") or "missing",
                                                           *(e["message"] for e in doc.get("errors", [])[:1])])
                continue
            files = []
            for image in doc.get("images", []):
                path = inside(folders[image["kind"]], image["filename"]) if image.get("kind") in folders else None
                if path is not None:
                    files.append(dict(image, path=str(path)))
            cells[tuple(entry["coords"])] = grid.cell_files(files) or "its pictures are gone"
        filename = f"{GRID_FOLDER}/sweep-{record['sweep_id']}.png"
        sheet = grid.contact_sheet(record["axes"], cells)
        grid.save(sheet, self.settings.output / filename, record["workflow"], record["sweep"])
        image_id = self.history.image_id(record["sweep_id"], "grid", "output", filename)
        return {"id": image_id, "url": image_url(image_id), "filename": filename, "kind": "output"}

    def _record_callback(self, sweep_id: str, outcome: dict) -> None:
        record = self.history.get_sweep(sweep_id)
        if record is not None:
            record["callback"] = outcome
            self.history.save_sweep(record)


def sweeps_of(request: web.Request) -> Sweeps:
    return state(request).sweeps


SWEEP_BODY = {"type": "object", "required": ["workflow", "sweep"], "properties": {
    "workflow": {"type": "object", "description": "our format or ComfyUI's"},
    "sweep": ref("Sweep"),
    "client_id": {"type": "string"},
    "sweep_id": {"type": "string", "description": "the client's own id (letters, digits, _ and -, at most 128): "
                                                 "queuing the same id again answers the existing sweep"},
    "confirm": {"type": "boolean", "description": "queue a sweep of more jobs than the server's limit "
                                                  "(10,000 unless serve --max-sweep-jobs)"},
    "grid": {"type": "boolean", "default": True, "description": "draw the grid when the sweep ends"},
    "callback_url": {"type": "string", "description": "POSTed once, when the sweep ends: "
                                                     "{\"type\": \"sweep_finished\", \"sweep\": ...}"}}}
SWEEP_QUEUED = {"type": "object", "properties": {
    "sweep_id": {"type": "string"}, "job_ids": {"type": "array", "items": {"type": "string"}},
    "position": {"type": "integer", "description": "jobs ahead of the first"}, "total": {"type": "integer"},
    "axes": {"type": "array", "items": ref("GridAxis")},
    "order": {"type": "array", "items": {"type": "integer"}, "description": "grid axes, slowest-varying first"},
    "jobs": {"type": "array", "items": ref("SweepJob")},
    "duplicate": {"type": "boolean", "description": "the sweep_id was known: this is the existing sweep"}}}


@routes.post("/api/sweep")
@openapi.operation(body=SWEEP_BODY, answer=SWEEP_QUEUED, tag="sweeps",
                   errors={400: "the workflow or the sweep is invalid: `errors` lists every problem (sweep "
                                "errors carry `axis` and `value`, 0-based)"})
async def queue_sweep(request: web.Request) -> web.Response:
    """Check a sweep and queue all its jobs, ordered so that shared upstream work runs once."""
    server, sweeps = state(request), sweeps_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise failure(400, "expected {\"workflow\": ..., \"sweep\": ...}")
    client_id, sweep_id, callback = client_fields(server, body, "sweep_id")
    if sweep_id is not None and (known := sweeps.describe(sweep_id, with_jobs=True)) is not None:
        return web.json_response(answer(known, None, duplicate=True))
    doc, errors = load(body.get("workflow"))
    if doc is None:
        raise failure(400, errors[0].message, [e.to_json() for e in errors])
    try:
        plan = await asyncio.to_thread(plan_sweep, doc, body.get("sweep"), server.settings,
                                       confirm=body.get("confirm") is True, max_jobs=sweeps.max_jobs)
    except SweepInvalid as exc:
        count = len(exc.errors)
        raise failure(400, f"the sweep has {count} problem{'s' * (count > 1)}: {exc.errors[0].message}",
                      [e.to_json() for e in exc.errors]) from None
    try:
        record, position = await asyncio.to_thread(sweeps.submit, plan, client_id, sweep_id, callback,
                                                   body.get("grid", True) is not False)
    except RuntimeError as exc:  # shutting down
        raise failure(409, str(exc)) from None
    return web.json_response(answer(record, position))


def answer(record: dict, position: int | None, duplicate: bool = False) -> dict:
    return {"sweep_id": record["sweep_id"], "job_ids": [job["job_id"] for job in record["jobs"]],
            "position": position, "total": record["total"], "axes": record["axes"], "order": record["order"],
            "jobs": [{k: job[k] for k in ("job_id", "index", "coords", "values")} for job in record["jobs"]],
            "duplicate": duplicate}


@routes.get("/api/sweeps")
@openapi.operation(query={"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}}, tag="sweeps",
                   answer={"type": "object", "properties": {"sweeps": {"type": "array", "items": ref("SweepState")}}})
async def list_sweeps(request: web.Request) -> web.Response:
    """Sweeps, newest first, without their workflow and jobs (GET /api/sweeps/{sweep_id} has them)."""
    limit = query_limit(request, 50)
    sweeps = sweeps_of(request)

    def summaries():
        return [sweeps.describe(r["sweep_id"], with_jobs=False) for r in sweeps.history.recent_sweeps(limit)]
    return web.json_response({"sweeps": await asyncio.to_thread(summaries)})


@routes.get("/api/sweeps/{sweep_id}")
@openapi.operation(answer=ref("SweepState"), errors={404: "no such sweep"}, tag="sweeps")
async def get_sweep(request: web.Request) -> web.Response:
    """A sweep: its workflow, axes, jobs (each with status and images), counts and, once finished, its grid."""
    sweep_id = request.match_info["sweep_id"]
    record = await asyncio.to_thread(sweeps_of(request).describe, sweep_id)
    if record is None:
        raise failure(404, f"no sweep {sweep_id}")
    return web.json_response(record)


@routes.delete("/api/sweeps/{sweep_id}")
@openapi.operation(answer={"type": "object", "properties": {"cancelled": {"type": "array",
                                                                          "items": {"type": "string"}}}},
                   errors={404: "no such sweep"}, tag="sweeps")
async def cancel_sweep(request: web.Request) -> web.Response:
    """Cancel a sweep's pending jobs (a running one goes on: POST /api/interrupt stops it); the grid
    is drawn from the jobs that ran."""
    sweeps, sweep_id = sweeps_of(request), request.match_info["sweep_id"]
    if await asyncio.to_thread(sweeps.history.get_sweep, sweep_id) is None:
        raise failure(404, f"no sweep {sweep_id}")
    return web.json_response({"cancelled": sweeps.cancel(sweep_id)})


SCHEMAS = {
    "Sweep": {"type": "object", "description": "A sweep (docs/protocol.md, 'Sweeps'): axes of NODE.INPUT values, "
                                               "zipped within an axis, crossed across axes.",
              "properties": {
                  "axes": {"type": "array", "items": {"type": "object", "properties": {
                      "inputs": {"type": "object", "additionalProperties": {"type": "array"},
                                 "description": "NODE.INPUT (node id or title) -> its values"},
                      "input": {"type": "string", "description": "shorthand for one input, with `values`"},
                      "values": {"type": "array"},
                      "label": {"type": "string", "description": "the axis name on the grid"},
                      "labels": {"type": "array", "items": {"type": "string"},
                                 "description": "what the grid shows for each value"}}}},
                  "repeat": {"type": "integer", "minimum": 1, "description": "each combination N times, seeds +0..N-1"},
                  "seed_inputs": {"type": "array", "items": {"type": "string"},
                                  "description": "what repeat increases (default: every seed input that runs)"}}},
    "GridAxis": {"type": "object", "properties": {"name": {"type": "string"},
                                                  "labels": {"type": "array", "items": {"type": "string"}}}},
    "SweepJob": {"type": "object", "properties": {
        "job_id": {"type": "string"}, "index": {"type": "integer", "description": "position in run order"},
        "coords": {"type": "array", "items": {"type": "integer"}, "description": "value index on each grid axis"},
        "values": {"type": "object", "description": "NODE.INPUT -> the value this job sets"},
        "status": {"type": "string"}, "images": {"type": "array", "items": ref("JobImage")}, "errors": ERRORS}},
    "SweepState": {"type": "object", "properties": {
        "sweep_id": {"type": "string"}, "client_id": {"type": ["string", "null"]},
        "status": {"enum": ["queued", "running", "finished"]}, "created": {"type": "number"},
        "finished": {"type": ["number", "null"]}, "workflow": ref("Workflow"), "sweep": ref("Sweep"),
        "axes": {"type": "array", "items": ref("GridAxis")}, "order": {"type": "array", "items": {"type": "integer"}},
        "jobs": {"type": "array", "items": ref("SweepJob")}, "total": {"type": "integer"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "jobs per status"},
        "grid": {"oneOf": [ref("JobImage"), {"type": "null"}]},
        "callback_url": {"type": ["string", "null"]}, "callback": {"type": ["object", "null"]}}},
}
openapi.SCHEMAS.update(SCHEMAS)
