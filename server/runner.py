"""What runs one job for the queue: the seam between the queue (order, history, events) and the
compute (an Executor here; a pool of workers elsewhere).

A runner has `slots` (how many jobs the queue may hand it at once: the queue starts one dispatcher
thread per slot) and runs a job as `Executor.run` runs a workflow: it streams the executor's
events to `on_event`, returns the RunResult, and raises WorkflowInvalid, NodeError or Interrupted
(each carrying `.result` where the executor gave one). It may set `job.worker` to say where the
job ran (shown in the queue and the history). It may also choose which pending job a free slot
starts: `pick(pending) -> Job` (server/ray_runner.py places jobs by what its workers hold).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from latentgraph.graph.executor import Executor, RunResult
    from latentgraph.server.jobs import Job


class Runner(Protocol):
    slots: int

    def run(self, job: Job, on_event: Callable[[dict], None]) -> RunResult:
        """Run `job.workflow` (blocking; called on a dispatcher thread)."""

    def interrupt(self, job: Job) -> None:
        """Stop `job` at its next node or sampler step (called from any thread)."""

    def close(self) -> None:
        """Release what the runner holds (after the queue stopped)."""


class LocalRunner:
    """The server's one long-lived Executor, in this process: its cache of loaded models and
    intermediate results serves every job, so re-running after one edit re-runs only that edit."""

    slots = 1

    def __init__(self, executor: Executor):
        self.executor = executor

    def run(self, job: Job, on_event: Callable[[dict], None]) -> RunResult:
        return self.executor.run(job.workflow, on_event=on_event)

    def interrupt(self, job: Job) -> None:
        self.executor.interrupt()

    def close(self) -> None:
        pass
