"""The server's jobs on a Ray worker pool (`latentgraph serve --ray auto|ADDRESS`).

A Runner (server/runner.py) for graph.ray_pool: the queue keeps its order, history, events and
webhooks exactly as with the local Executor; this runner only decides which pending job starts
when a worker is free (`pick`: the pool's cache-affinity placement over the queue's next jobs, so a
sweep queued at once runs in slices that keep its shared work on one worker) and runs it there. The
queue's slots are the pool's workers. A job's `worker` names the worker running it (shown in
GET /api/queue and kept in the history); a job whose worker died runs again, once, on another one,
with a `rerun` event.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.executor import RunResult
from latentgraph.graph.ray_pool import PoolJob, RayPool
from latentgraph.server.jobs import Job

PICK_WINDOW = 64  # pending jobs the placement looks at (each is validated and keyed once)


class RayRunner:
    def __init__(self, pool: RayPool):
        self.pool = pool
        self.slots = pool.size
        self._lock = threading.Lock()
        self._prepared: dict[str, PoolJob | WorkflowInvalid] = {}  # pending jobs looked at, by id
        self._picked: dict[str, PoolJob | WorkflowInvalid] = {}  # picked, not yet run

    def pick(self, pending: list[Job]) -> Job:
        """The pending job to start now: the one the placement puts on an idle worker (reserved
        there), else the first."""
        with self._lock:
            window = pending[:PICK_WINDOW]
            self._prepared = {job.job_id: self._prepared.get(job.job_id) or self._prepare(job) for job in window}
            chosen = next((job for job in window if isinstance(self._prepared[job.job_id], Exception)), None)
            if chosen is None:  # an invalid job is picked at once: it fails without a worker
                reserved = self.pool.reserve([self._prepared[job.job_id] for job in window])
                chosen = next((job for job in window if self._prepared[job.job_id] is reserved), pending[0])
            self._picked[chosen.job_id] = self._prepared.pop(chosen.job_id, None) or self._prepare(chosen)
            return chosen

    def run(self, job: Job, on_event: Callable[[dict], None]) -> RunResult:
        with self._lock:
            prepared = self._picked.pop(job.job_id, None) or self._prepare(job)
        if isinstance(prepared, WorkflowInvalid):
            raise prepared
        prepared.on_event = on_event
        prepared.on_start = lambda worker: setattr(job, "worker", worker)
        return self.pool.start(prepared).wait()

    def interrupt(self, job: Job) -> None:
        if not self.pool.interrupt(job.job_id):
            self.pool.cancel(job.job_id)  # placed but not started yet

    def close(self) -> None:
        self.pool.close()

    def _prepare(self, job: Job) -> PoolJob | WorkflowInvalid:
        try:
            return self.pool.prepare(job.workflow, job_id=job.job_id)
        except WorkflowInvalid as exc:
            return exc


def ray_runner(settings, address: str, workers: int | None = None, threads: int | None = None) -> RayRunner:
    """A runner on a new pool (live previews on) for `serve --ray`."""
    return RayRunner(RayPool(settings, address=address, workers=workers, threads=threads, previews=True))
