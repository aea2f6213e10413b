"""The job queue: one worker thread runs jobs in order with a single long-lived Executor.

The executor (and so its cache of models and intermediate results) lives as long as the server:
pressing Run again after editing one widget re-runs only what that edit changed, and a failing or
interrupted job leaves everything computed before it in the cache. Running in a thread keeps the
event loop free to answer requests and stream events while a job runs.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.server.history import History

log = logging.getLogger(__name__)

Publish = Callable[[dict], None]  # thread-safe: hands an event to the websocket broadcaster


@dataclass
class Job:
    job_id: str
    workflow: dict
    client_id: str | None = None
    status: str = "pending"  # pending | running | success | error | interrupted | cancelled
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    images: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    nodes: dict[str, dict] = field(default_factory=dict)
    interrupt_requested: bool = False

    def to_json(self) -> dict:
        return {"job_id": self.job_id, "status": self.status, "client_id": self.client_id,
                "created": self.created, "started": self.started, "finished": self.finished,
                "workflow": self.workflow, "images": self.images, "errors": self.errors, "nodes": self.nodes}


def image_url(image_id: str) -> str:
    return f"/api/images/{image_id}"


class JobQueue:
    def __init__(self, executor: Executor, history: History, publish: Publish):
        self.executor = executor
        self.history = history
        self._publish = publish
        self._pending: deque[Job] = deque()
        self._running: Job | None = None
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._close_unfinished()

    # --- control, called from the event loop ---------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="latentgraph-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel what is pending, interrupt what runs, wait for the worker (blocking: call in a thread)."""
        with self._changed:
            self._stopping = True
            self._cancel_pending(list(self._pending))
            if self._running is not None:
                self._running.interrupt_requested = True
                self.executor.interrupt()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, workflow: dict, client_id: str | None = None) -> tuple[Job, int]:
        """Queue a validated workflow; returns the job and how many jobs are ahead of it."""
        job = Job(uuid.uuid4().hex, workflow, client_id)
        with self._changed:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            position = len(self._pending) + (self._running is not None)
            self._pending.append(job)
            self.history.save(job.to_json())
            # Published under the lock, so that "queued" reaches clients before the worker's "started".
            self._event(job, {"type": "queued", "position": position, "client_id": client_id})
            self._queue_event()
            self._changed.notify_all()
        return job, position

    def cancel(self, job_id: str) -> str | None:
        """Cancel a pending job: None if done, else why not ('running' or 'unknown')."""
        with self._changed:
            job = next((j for j in self._pending if j.job_id == job_id), None)
            if job is None:
                return "running" if self._running is not None and self._running.job_id == job_id else "unknown"
            self._cancel_pending([job])
            return None

    def clear(self) -> list[str]:
        """Cancel every pending job; returns their ids."""
        with self._changed:
            jobs = list(self._pending)
            self._cancel_pending(jobs)
            return [job.job_id for job in jobs]

    def interrupt(self, job_id: str | None = None) -> str | None:
        """Interrupt the running job (only if it is `job_id`, when given); returns its id."""
        with self._changed:
            job = self._running
            if job is None or (job_id is not None and job.job_id != job_id):
                return None
            job.interrupt_requested = True
            self.executor.interrupt()
            return job.job_id

    def snapshot(self) -> tuple[Job | None, list[Job]]:
        with self._changed:
            return self._running, list(self._pending)

    def find(self, job_id: str) -> Job | None:
        with self._changed:
            return next((j for j in [self._running, *self._pending] if j is not None and j.job_id == job_id), None)

    # --- the worker thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                job = self._pending.popleft()
                job.status, job.started = "running", time.time()
                self._running = job
                self.history.save(job.to_json())
                self._event(job, {"type": "started"})
                self._queue_event()
            try:
                self._run(job)
            except Exception:  # never let one job stop the worker
                log.exception("job %s: unexpected failure", job.job_id)
                if job.status == "running":
                    error = GraphError("execution", "internal server error (see the server log)").to_json()
                    job.status, job.errors = "error", [error]
                    self._event(job, {"type": "error", **error})
            with self._changed:
                job.finished = time.time()
                self._running = None
                self.history.save(job.to_json())
                self._event(job, {"type": "finished", "status": job.status})
                self._queue_event()

    def _run(self, job: Job) -> None:
        def on_event(event: dict) -> None:
            # An interrupt asked for before the executor cleared its flag (at the start of the run)
            # still stops the job, at the next node or sampler step.
            if job.interrupt_requested and event["type"] in ("executing", "progress"):
                raise Interrupted()
            if event["type"] == "executed" and event.get("images"):
                event = dict(event, images=[self._issue_image(job, event["node_id"], image)
                                            for image in event["images"]])
                job.images.extend(event["images"])
            self._event(job, event)

        result = None
        try:
            result = self.executor.run(job.workflow, on_event=on_event)
            job.status = "success"
        except WorkflowInvalid as exc:  # the folders changed since the job was queued
            job.status = "error"
            job.errors = [error.to_json() for error in exc.errors]
            for error in job.errors:
                self._event(job, {"type": "error", **error})
        except NodeError as exc:  # the executor already sent the error event
            job.status, job.errors, result = "error", [exc.error.to_json()], getattr(exc, "result", None)
        except Interrupted as exc:
            job.status, result = "interrupted", getattr(exc, "result", None)
            job.errors = [GraphError("interrupted", "interrupted before it finished").to_json()]
        if result is not None:
            job.nodes = {r.node_id: {"status": r.status, "seconds": round(r.seconds, 4)} for r in result.report}

    def _issue_image(self, job: Job, node_id: str, image: dict) -> dict:
        image_id = self.history.image_id(job.job_id, node_id, image["kind"], image["filename"])
        return {"id": image_id, "node_id": node_id, "url": image_url(image_id),
                "filename": image["filename"], "kind": image["kind"]}

    # --- helpers -------------------------------------------------------------------------------

    def _cancel_pending(self, jobs: list[Job]) -> None:  # with the lock held
        if not jobs:
            return
        for job in jobs:
            self._pending.remove(job)
            job.status, job.finished = "cancelled", time.time()
            self.history.save(job.to_json())
            self._event(job, {"type": "finished", "status": "cancelled"})
        self._queue_event()

    def _event(self, job: Job, event: dict) -> None:
        self._publish({"type": event["type"], "job_id": job.job_id, **event})

    def queue_event(self) -> dict:
        """The `queue` event: how many jobs run and wait."""
        return {"type": "queue", "job_id": None, "running": int(self._running is not None),
                "pending": len(self._pending)}

    def _queue_event(self) -> None:
        self._publish(self.queue_event())

    def _close_unfinished(self) -> None:
        """Jobs a previous server left pending or running did not finish: record that."""
        for doc in self.history.unfinished():
            was_running = doc["status"] == "running"
            doc["status"] = "interrupted" if was_running else "cancelled"
            doc["errors"] = doc.get("errors") or [GraphError(
                "interrupted", "the server stopped before this job finished").to_json()]
            self.history.save(doc)
