"""`latentgraph run --ray auto|ADDRESS`: the command's workflows, or its sweep's jobs, run as jobs of a
Ray worker pool.

The runner stands in for the command's Executor. The jobs are queued all at once (the command's
workflows when the first is asked for, a sweep's jobs through `start_all`), so they run side by side
and are placed together (graph.placement); `run(doc)` then hands each outcome over in the command's
order, as Executor.run would. Only this module and graph.ray_pool import Ray.
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
        self.settings = settings
        self.pool = RayPool(settings, address=args.ray, workers=args.workers, threads=args.worker_threads)
        print(f"ray: {self.pool.size} worker(s), {self.pool.threads} thread(s) each, "
              f"{'GPU' if self.pool.gpus else 'CPU'}", file=sys.stderr)
        self.loaded = [doc for _, doc, problems in loaded if doc is not None and not problems]
        self.names = {id(doc): path for path, doc, _ in loaded}
        self.outcomes: dict[int, object] = {}  # id(doc) -> its PoolJob, or why it cannot run
        self.paths: dict[str, str] = {}  # job id -> what to call it in messages
        self.closed = False
        atexit.register(self.close)  # the summary, after the command's own lines

    def start_all(self, workflows: list[dict]) -> None:
        """Queue workflows together: placed at once, run side by side; `run(doc)` collects each."""
        jobs = []
        for doc in workflows:
            try:
                job = self.pool.prepare(doc)
            except WorkflowInvalid as exc:
                self.outcomes[id(doc)] = exc
                continue
            self.outcomes[id(doc)] = job
            self.paths[job.job_id] = self.names.get(id(doc), f"job {len(self.paths) + 1}")
            jobs.append(job)
        self.pool.enqueue(jobs)

    def run(self, doc: dict, on_event=None) -> RunResult:
        """The outcome of `doc`'s job (waiting for it): its result, or the error Executor.run raises."""
        if id(doc) not in self.outcomes:
            pending, self.loaded = self.loaded, []
            self.start_all(pending if any(doc is d for d in pending) else [doc])
        outcome = self.outcomes.pop(id(doc))
        try:
            if isinstance(outcome, Exception):
                raise outcome
            return outcome.wait()
        except KeyboardInterrupt:
            self.close()
            raise
        finally:
            if not self.outcomes and not self.loaded:
                self.pool.close()  # all collected: free the workers now (the summary comes at exit)

    def close(self) -> None:
        """Stop the pool (interrupting what runs, cancelling what waits) and print its summary."""
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
