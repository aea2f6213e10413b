"""The job queue: durable, in order, handed to a runner by dispatcher threads.

- Every job is written to the SQLite history before `submit` returns, with its place in the
  queue. After a restart, graceful or `kill -9`, the pending jobs run again in their order without
  being queued again.
- The job that was running when the server stopped is marked `interrupted` with the reason; it is
  queued again, once only, when the server starts with `resume_interrupted` (`serve
  --resume-interrupted`). Nothing is dropped silently: cancelled and interrupted jobs carry the
  reason in `errors`, and every end is sent as a `finished` event.
- A client may give its own job id: queuing the same id again answers the existing job.
- The runner (server/runner.py) runs one job; one dispatcher thread per runner slot takes the next
  pending job. With the LocalRunner that is one thread and the server's single long-lived
  Executor, whose cache makes re-running after one edit cheap; running in threads keeps the event
  loop free to answer requests and stream events.
- Hooks (`on_finished`) follow each job's end: webhooks and sweeps use them.
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowInvalid
from latentgraph.server.history import History
from latentgraph.server.runner import Runner

log = logging.getLogger(__name__)

Publish = Callable[[dict], None]  # thread-safe: hands an event to the websocket broadcaster
FINISHED = ("success", "error", "interrupted", "cancelled")
# Ids clients may choose for their jobs and sweeps (also used in grid file names).
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
CRASHED = "the server stopped (it crashed or was killed) while this job was running"
SHUT_DOWN = "the server was shut down while this job was running"


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
    sweep_id: str | None = None
    sweep_job: int | None = None  # its index in the sweep's run order
    callback_url: str | None = None
    callback: dict | None = None  # how the webhook went: {"status": HTTP status or None, "error"?, "at"}
    attempts: int = 0  # times it started
    resumed: bool = False  # queued again after the server stopped while it ran (once only)
    resumable: bool = False  # interrupted by a stop: `--resume-interrupted` may queue it again
    worker: str | None = None  # where it ran, when the runner says (a worker pool)
    interrupt_requested: bool = False
    stop_reason: str | None = None  # why the queue interrupted it (a shutdown)

    INTERNAL = ("interrupt_requested", "stop_reason")

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.INTERNAL}

    @classmethod
    def from_json(cls, doc: dict) -> Job:
        known = {f.name for f in fields(cls)} - set(cls.INTERNAL)
        return cls(**{k: v for k, v in doc.items() if k in known})


def image_url(image_id: str) -> str:
    return f"/api/images/{image_id}"


class JobQueue:
    def __init__(self, runner: Runner, history: History, publish: Publish, *, resume_interrupted: bool = False):
        self.runner = runner
        self.history = history
        self._publish = publish
        self._pending: deque[Job] = deque()
        self._running: dict[str, Job] = {}  # in the order they started
        self._changed = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._hooks: list[Callable[[Job], None]] = []
        self._ended_while_stopped = self._restore(resume_interrupted)

    # --- control, called from the event loop ---------------------------------------------------

    def on_finished(self, hook: Callable[[Job], None]) -> None:
        """Call `hook(job)` after each job's end is recorded (on a dispatcher thread)."""
        self._hooks.append(hook)

    def start(self) -> None:
        """Start the dispatchers; the jobs found ended at restore go through the hooks first."""
        self._after_end(self._ended_while_stopped)
        self._threads = [threading.Thread(target=self._work, name=f"latentgraph-worker-{n}", daemon=True)
                         for n in range(max(1, self.runner.slots))]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> dict:
        """Stop taking jobs: the pending ones stay queued (in the history) for the next start, the
        running ones are interrupted with the reason. Blocking (call in a thread). Returns the
        `shutdown` event it published."""
        with self._changed:
            self._stopping = True
            running = list(self._running.values())
            for job in running:
                job.stop_reason = SHUT_DOWN
                job.interrupt_requested = True
                self.runner.interrupt(job)
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        with self._changed:
            event = {"type": "shutdown", "job_id": None, "interrupted": [job.job_id for job in running],
                     "pending": [job.job_id for job in self._pending]}
            self._publish(event)
        return event

    def knows(self, job_id: str) -> bool:
        with self._changed:
            return self._known(job_id) is not None

    def submit(self, workflow: dict | None, client_id: str | None = None, *, job_id: str | None = None,
               callback_url: str | None = None) -> tuple[Job, int | None, bool]:
        """Queue a validated workflow. Returns the job, how many jobs are ahead of it, and whether it
        is new: an id already known answers that job (and where it stands, None if it ended)."""
        with self._changed:
            if job_id is not None:
                known = self._known(job_id)
                if known is not None:
                    return known, self._position(known), False
            if workflow is None:
                raise ValueError("a new job needs a workflow")
            job = Job(job_id or uuid.uuid4().hex, workflow, client_id, callback_url=callback_url)
            position = self._enqueue([job])
            # Published under the lock, so that "queued" reaches clients before the worker's "started".
            self._event(job, {"type": "queued", "position": position, "client_id": client_id})
            self._queue_event()
            return job, position, True

    def submit_many(self, jobs: list[Job], event: dict) -> int:
        """Queue several jobs at once (a sweep's), all or none; `event` is published for them instead
        of one `queued` event each. Returns how many jobs are ahead of the first."""
        with self._changed:
            position = self._enqueue(jobs)
            self._publish(dict(event, position=position))
            self._queue_event()
            return position

    def cancel(self, job_id: str, reason: str = "cancelled before it ran") -> str | None:
        """Cancel a pending job: None if done, else why not ('running' or 'unknown')."""
        with self._changed:
            job = next((j for j in self._pending if j.job_id == job_id), None)
            if job is None:
                return "running" if job_id in self._running else "unknown"
            self._cancel_pending([job], reason)
            return None

    def cancel_where(self, keep: Callable[[Job], bool], reason: str) -> list[str]:
        """Cancel every pending job for which `keep` is false; returns their ids."""
        with self._changed:
            jobs = [job for job in self._pending if not keep(job)]
            self._cancel_pending(jobs, reason)
            return [job.job_id for job in jobs]

    def clear(self) -> list[str]:
        """Cancel every pending job; returns their ids."""
        return self.cancel_where(lambda job: False, "cancelled before it ran: the queue was cleared")

    def interrupt(self, job_id: str | None = None) -> str | None:
        """Interrupt the running job(s) (only `job_id`, when given); returns the (first) id interrupted."""
        with self._changed:
            jobs = [j for j in self._running.values() if job_id is None or j.job_id == job_id]
            for job in jobs:
                job.interrupt_requested = True
                self.runner.interrupt(job)
            return jobs[0].job_id if jobs else None

    def snapshot(self) -> tuple[list[Job], list[Job]]:
        """(running jobs in the order they started, pending jobs in the order they will run)."""
        with self._changed:
            return list(self._running.values()), list(self._pending)

    def find(self, job_id: str) -> Job | None:
        with self._changed:
            return self._running.get(job_id) or next((j for j in self._pending if j.job_id == job_id), None)

    # --- the dispatcher threads ----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                job = self._next_job()
                job.status, job.started, job.finished = "running", time.time(), None
                job.attempts += 1
                self._running[job.job_id] = job
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
                del self._running[job.job_id]
                self.history.save(job.to_json())
                self._finished_event(job)
                self._queue_event()
            self._after_end([job])

    def _next_job(self) -> Job:  # with the lock held
        """The pending job to start: the first, unless the runner picks (a worker pool places jobs by
        what its workers hold, so a sweep runs in slices that keep shared work on one worker)."""
        pick = getattr(self.runner, "pick", None)
        job = pick(list(self._pending)) if pick is not None else self._pending[0]
        self._pending.remove(job)
        return job

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

        job.images, job.errors, job.nodes = [], [], {}
        result = None
        try:
            result = self.runner.run(job, on_event)
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
            job.resumable = job.stop_reason is not None and not job.resumed
            reason = job.stop_reason or "interrupted before it finished"
            job.errors = [GraphError("interrupted", reason).to_json()]
        if result is not None:
            job.nodes = {r.node_id: {"status": r.status, "seconds": round(r.seconds, 4)} for r in result.report}

    def _issue_image(self, job: Job, node_id: str, image: dict) -> dict:
        image_id = self.history.image_id(job.job_id, node_id, image["kind"], image["filename"])
        return {"id": image_id, "node_id": node_id, "url": image_url(image_id),
                "filename": image["filename"], "kind": image["kind"]}

    # --- helpers (with the lock held) ----------------------------------------------------------

    def _enqueue(self, jobs: list[Job]) -> int:
        if self._stopping:
            raise RuntimeError("the server is shutting down")
        position = len(self._pending) + len(self._running)
        self.history.save_many([job.to_json() for job in jobs])  # durable before anyone is told
        self._pending.extend(jobs)
        self._changed.notify_all()
        return position

    def _known(self, job_id: str) -> Job | None:
        live = self._running.get(job_id) or next((j for j in self._pending if j.job_id == job_id), None)
        if live is not None:
            return live
        doc = self.history.get(job_id)
        return Job.from_json(doc) if doc is not None else None

    def _position(self, job: Job) -> int | None:
        if job.job_id in self._running:
            return 0
        ids = [j.job_id for j in self._pending]
        return len(self._running) + ids.index(job.job_id) if job.job_id in ids else None

    def _cancel_pending(self, jobs: list[Job], reason: str) -> None:
        if not jobs:
            return
        for job in jobs:
            self._pending.remove(job)
            job.status, job.finished = "cancelled", time.time()
            job.errors = [GraphError("cancelled", reason).to_json()]
        self.history.save_many([job.to_json() for job in jobs])
        for job in jobs:
            self._finished_event(job)
        self._queue_event()
        if self._hooks:  # off the lock and off the event loop (a sweep may draw its grid)
            threading.Thread(target=self._after_end, args=(jobs,), daemon=True).start()

    def _after_end(self, jobs: list[Job]) -> None:
        """The hooks, for jobs that reached their end: not for one a stop interrupted, which the next
        start may queue again (its end comes then)."""
        for job in jobs:
            if job.resumable:
                continue
            for hook in self._hooks:
                try:
                    hook(job)
                except Exception:
                    log.exception("job %s: a finish hook failed", job.job_id)

    def _finished_event(self, job: Job) -> None:
        event = {"type": "finished", "status": job.status}
        if job.status != "success":
            event["errors"] = job.errors
        if job.sweep_id is not None:
            event["sweep_id"] = job.sweep_id
        self._event(job, event)

    def _event(self, job: Job, event: dict) -> None:
        self._publish({"type": event["type"], "job_id": job.job_id, **event})

    def queue_event(self) -> dict:
        """The `queue` event: how many jobs run and wait."""
        return {"type": "queue", "job_id": None, "running": len(self._running), "pending": len(self._pending)}

    def _queue_event(self) -> None:
        self._publish(self.queue_event())

    def _restore(self, resume_interrupted: bool) -> list[Job]:
        """Take up what a previous server left: its pending jobs, in order; the job it was running
        is recorded as interrupted, and queued again once if `resume_interrupted`. Returns the jobs
        whose end this decided (interrupted for good)."""
        ended = []
        for doc in self.history.unfinished():
            job = Job.from_json(doc)
            if job.status == "running":  # the server died without recording the end
                job.status, job.finished = "interrupted", job.finished or time.time()
                job.errors = [GraphError("interrupted", CRASHED).to_json()]
                job.resumable = not job.resumed
            if job.status == "interrupted":
                if resume_interrupted and job.resumable:
                    job.status, job.resumed, job.finished = "pending", True, None
                    job.errors = []
                job.resumable = False  # considered once: a later restart does not bring it back
            if job.status == "pending":
                self._pending.append(job)
            else:
                ended.append(job)
            self.history.save(job.to_json())
        return ended
