"""`latentgraph run --ray auto|ADDRESS`: the command's workflows run as jobs of a Ray worker pool.

All of them are queued at once, so they run side by side on the workers and are placed together
(graph.placement); `run(doc)` then hands each outcome to the command in the order given, as
Executor.run would. Only this module and graph.ray_pool import Ray.
"""
from __future__ import annotations

import atexit
import sys

from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.executor import RunResult
from latentgraph.graph.settings import Settings


class PoolRunner:
    def __init__(self, args, settings: Settings, loaded: list[tuple[str, dict | None, list[str]]]):
        try:
            from latentgraph.graph.ray_pool import RayPool
        except ImportError as exc:
            raise ValueError(f"--ray needs Ray ({exc}): pip install 'latentgraph[ray]'") from None
        self.pool = RayPool(settings, address=args.ray, workers=args.workers, threads=args.worker_threads)
        self.closed = False
        self.outcomes: dict[int, object] = {}  # id(doc) -> its PoolJob, or why it cannot run
        self.paths: dict[str, str] = {}  # job id -> workflow file
        jobs = []
        for path, doc, problems in loaded:
            if doc is None or problems:
                continue  # the command reports these itself
            try:
                job = self.pool.prepare(doc)
            except WorkflowInvalid as exc:
                self.outcomes[id(doc)] = exc
                continue
            self.outcomes[id(doc)] = job
            self.paths[job.job_id] = path
            jobs.append(job)
        print(f"ray: {len(jobs)} job(s) on {self.pool.size} worker(s), {self.pool.threads} thread(s) each, "
              f"{'GPU' if self.pool.gpus else 'CPU'}", file=sys.stderr)
        self.pool.enqueue(jobs)
        atexit.register(self.close)  # the summary, after the command's own lines

    def run(self, doc: dict, on_event=None) -> RunResult:
        """The outcome of `doc`'s job (waiting for it): its result, or the error Executor.run raises."""
        outcome = self.outcomes.pop(id(doc))
        try:
            if isinstance(outcome, Exception):
                raise outcome
            return outcome.wait()
        except KeyboardInterrupt:
            self.close()
            raise
        finally:
            if not self.outcomes:
                self.pool.close()

    def close(self) -> None:
        """Stop the pool (interrupting what runs) and print its summary."""
        if self.closed:
            return
        self.closed = True
        self.pool.close()
        report = self.pool.report()
        per_worker = ", ".join(f"{w['name']}: {len(w['jobs'])}" for w in report["workers"])
        rate = "-" if report["hit_rate"] is None else f"{report['hit_rate']:.0%}"
        print(f"ray: {report['jobs']} job(s) done ({per_worker}); nodes served from a worker's cache: {rate}; "
              f"computed {report['executed']} of {report['distinct_nodes']} distinct; "
              f"workers lost: {len(report['lost'])}", file=sys.stderr)
        for job_id, reasons in report["reruns"].items():
            print(f"ray: {self.paths.get(job_id, job_id)}: {'; '.join(reasons)}", file=sys.stderr)
