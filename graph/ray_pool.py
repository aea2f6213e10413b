"""A pool of Executor workers on a Ray cluster (`--ray auto|ADDRESS`): the driver's side.

Each worker (graph.ray_worker) is a Ray actor owning one Executor on one GPU or one CPU slot, so its
loaded models and cached results stay between jobs. The driver validates a job and computes its
nodes' cache keys with the workers' salt (no model is loaded), then places it by cache affinity
(graph.placement). One driver thread per worker fetches the job's events as they come, writes the
PNGs it saved into the driver's output folder (byte for byte as the worker made them), and hands
the outcome over exactly as Executor.run would: a RunResult, or WorkflowInvalid / NodeError /
Interrupted carrying `.result`.

Faults: a worker that dies (its process killed, its node lost) is replaced by a new one, and the
job it ran is run again once on another worker (the job's `reruns` and a `rerun` event say why); a
job whose worker dies twice fails with a `worker_lost` error. A node that fails on a worker (a model
it cannot load) fails only that job; the worker keeps serving. No job is dropped: when no worker
is left and none can be started, the waiting jobs fail with that reason.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import ray
from ray.exceptions import RayActorError

from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowInvalid
from latentgraph.graph.executor import NodeReport, RunResult, plan_keys
from latentgraph.graph.placement import NodeCosts, Work, WorkerView, assign
from latentgraph.graph.ray_worker import DONE, ExecutorWorker
from latentgraph.graph.settings import Settings
from latentgraph.graph.validate import validate
from latentgraph.graph.workflow import load_workflow
from latentgraph.nodes import folders
from latentgraph.nodes.image import output_path

log = logging.getLogger(__name__)

Event = dict
MAX_CPU_WORKERS = 4  # default on a CPU-only cluster: a few workers with several threads each
START_TRIES = 3  # a worker slot whose replacement fails this many times in a row is given up
KEPT = 10_000  # finished jobs the report covers (a long-running server forgets older ones)
_COUNTER = re.compile(r"_\d+_\.png$")


@dataclass
class PoolRunResult(RunResult):
    """A RunResult that also says which worker made it, and why it ran again, if it did."""

    worker: str = ""
    reruns: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**super().to_json(), "worker": self.worker, **({"reruns": self.reruns} if self.reruns else {})}


@dataclass
class PoolJob:
    """A job in the pool; `wait()` returns what Executor.run would (or raises what it would)."""

    job_id: str
    workflow: dict
    work: Work
    inputs: dict[str, bytes]  # the input images it reads, sent along to the worker
    on_event: Callable[[Event], None]
    seq: int  # queue order
    status: str = "pending"  # pending | running | success | error | invalid | interrupted | cancelled
    worker: str | None = None  # the worker that runs (or ran) it
    attempts: int = 0  # starts on workers that then died
    reruns: list[str] = field(default_factory=list)  # why it ran again
    result: RunResult | None = None
    error: Exception | None = None
    interrupt_requested: bool = False
    held: bool = False  # reserved on a worker, not to start before `start(job)`
    on_start: Callable[[str], None] | None = None  # told the worker's name each time it starts
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> RunResult:
        if not self.done.wait(timeout):
            raise TimeoutError(f"job {self.job_id} did not finish in {timeout} s")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass
class Worker:
    """The driver's handle on one worker actor."""

    view: WorkerView
    actor: object
    info: dict = field(default_factory=dict)  # pid, host, device... once started
    job: PoolJob | None = None
    alive: bool = True
    jobs: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT))  # ids of the jobs it ran (the last)
    executed: int = 0  # nodes it computed
    cached: int = 0  # nodes it served from its cache
    models: dict[str, str] = field(default_factory=dict)  # loaded model key -> what it is

    @property
    def name(self) -> str:
        return self.view.name


def start_ray(address: str, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` (host:port or ray://host:port), or with `auto` start a local
    runtime (or join the cluster RAY_ADDRESS names). Returns whether this call started Ray."""
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address == "auto" and os.environ.get("RAY_ADDRESS"):  # inside a Ray job: its cluster
        ray.init(**options)
    elif address == "auto":  # a new runtime, even where `ray start` left one running
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), **options)
    else:
        ray.init(address=address, **options)
    return True


def default_layout(settings: Settings, workers: int | None, threads: int | None) -> tuple[int, int, bool]:
    """(workers, torch threads each, on GPUs?) for the cluster Ray is connected to: one worker per
    GPU; on a CPU-only cluster (or with --device cpu) up to MAX_CPU_WORKERS sharing the CPUs."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    if settings.device.startswith("cuda") and not gpus:
        raise ValueError("--device cuda was asked for, but the Ray cluster has no GPU")
    if settings.device != "cpu" and gpus:
        return workers or gpus, threads or 1, True
    workers = workers or min(MAX_CPU_WORKERS, cpus)
    return workers, threads or max(1, cpus // workers), False


class RayPool:
    """Workers on a Ray cluster, fed from one queue in order, placed by cache affinity."""

    def __init__(self, settings: Settings, address: str = "auto", workers: int | None = None,
                 threads: int | None = None, previews: bool = False, max_reruns: int = 1):
        self.settings = settings
        threads = threads or settings.threads  # --worker-threads, else --threads
        self.started_ray = start_ray(address, (workers or 0) * (threads or 0) or None)
        self.size, self.threads, self.gpus = default_layout(settings, workers, threads)
        self.previews, self.max_reruns = previews, max_reruns
        self.costs = NodeCosts()
        self.workers: list[Worker] = []
        self.lost: list[dict] = []  # workers that died: name, pid, job, reason
        self.finished: deque[PoolJob] = deque(maxlen=KEPT)
        self.affinity_placements = 0  # jobs placed on a worker that held some of their work
        self._pending: list[PoolJob] = []
        self._changed = threading.Condition()
        self._closing = False
        self._seq = 0
        self._names = 0
        self._start_failures = 0
        self._images: dict[tuple[str, str], list[dict]] = {}  # (worker, node key) -> the images it saved
        self._files = threading.Lock()
        for _ in range(self.size):
            self._add_worker()

    # --- the public interface ---------------------------------------------------------------------

    def prepare(self, workflow, on_event: Callable[[Event], None] | None = None,
                job_id: str | None = None) -> PoolJob:
        """A job for `workflow` (any accepted format), not queued yet. Raises WorkflowInvalid when it is
        invalid here (checked against the driver's folders, which must see the models the workers see)."""
        doc = load_workflow(workflow)
        plan, errors = validate(doc, self.settings)
        if errors:
            raise WorkflowInvalid(errors)
        order = plan.order()
        keys = plan_keys(plan, order, self.settings, self._salt())
        work = Work.of(keys, {n: plan.nodes[n].spec.name for n in order},
                       [n for n in order if plan.nodes[n].spec.holds_models])
        inputs = {}
        for node in plan.nodes.values():
            for inp in node.spec.inputs:
                if inp.file_folder == "input" and inp.name in node.values:
                    path = folders.resolve_file(self.settings, "input", node.values[inp.name])
                    if path is not None:
                        inputs[str(node.values[inp.name])] = path.read_bytes()
        return PoolJob(job_id or uuid.uuid4().hex, doc, work, inputs, on_event or (lambda event: None), 0)

    def enqueue(self, jobs: list[PoolJob]) -> list[PoolJob]:
        """Queue prepared jobs, in order, and place them together: a sweep queued at once is spread
        in slices that keep its shared work on one worker (one at a time, each would start at once)."""
        with self._changed:
            if self._closing:
                raise RuntimeError("the pool is closed")
            for job in jobs:
                self._seq += 1
                job.seq = self._seq
                self._pending.append(job)
            self._place()
        return jobs

    def submit(self, workflow, on_event: Callable[[Event], None] | None = None,
               job_id: str | None = None) -> PoolJob:
        """Queue one workflow; raises WorkflowInvalid at once when it is invalid."""
        return self.enqueue([self.prepare(workflow, on_event, job_id)])[0]

    def run(self, workflow, on_event: Callable[[Event], None] | None = None) -> RunResult:
        """Executor.run on the pool: queue the workflow and wait for it."""
        return self.submit(workflow, on_event).wait()

    def run_all(self, workflows: list, on_event: Callable[[int, Event], None] | None = None) -> list[PoolJob]:
        """Queue several workflows at once (a sweep, in its order) and wait for all of them. Nothing
        is queued when one of them is invalid (WorkflowInvalid)."""
        jobs = self.enqueue([self.prepare(w, None if on_event is None else (lambda e, i=i: on_event(i, e)))
                             for i, w in enumerate(workflows)])
        for job in jobs:
            job.done.wait()
        return jobs

    def reserve(self, candidates: list[PoolJob]) -> PoolJob | None:
        """For a queue kept elsewhere (the server's): of its prepared jobs, in its order, the one an
        idle worker should start now by placement. It is placed on that worker and held there until
        `start(job)`; None when no worker is idle."""
        with self._changed:
            if self._closing:
                return None
            alive = [w for w in self.workers if w.alive]
            placed = assign([(job, job.work) for job in candidates], [w.view for w in alive], self.costs)
            if not placed:
                return None
            job, name = placed[0].job, placed[0].worker.name
            job.held = True
            self._start_on(job, next(w for w in alive if w.name == name), placed[0].affinity)
            return job

    def start(self, job: PoolJob) -> PoolJob:
        """Let a reserved job run, or queue one that is not (one cancelled meanwhile stays so)."""
        with self._changed:
            if job.done.is_set():
                return job
            if not job.held:
                return self.enqueue([job])[0]
            job.held = False
            self._changed.notify_all()
            return job

    def interrupt(self, job_id: str) -> bool:
        """Interrupt a running job at its next node or sampler step (one reserved, not started, is
        cancelled)."""
        with self._changed:
            worker = next((w for w in self.workers if w.job is not None and w.job.job_id == job_id), None)
            if worker is None:
                return False
            if worker.job.held:
                return self.cancel(job_id)
            worker.job.interrupt_requested = True
            worker.actor.interrupt.remote(job_id)
            return True

    def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not started (queued, or reserved and held)."""
        with self._changed:
            job = next((j for j in self._pending if j.job_id == job_id), None)
            held = next((w for w in self.workers if w.job is not None and w.job.job_id == job_id and w.job.held),
                        None)
            if job is not None:
                self._pending.remove(job)
            elif held is not None:
                job, held.job, held.view.running = held.job, None, None
                job.held = False
            else:
                return False
            self._end(job, "cancelled", error=Interrupted("cancelled before it started"))
            self._place()
            return True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until every worker has started (loaded its libraries); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: all(w.view.ready for w in self.workers if w.alive), timeout)

    def worker_of(self, job_id: str) -> str | None:
        with self._changed:
            return next((w.name for w in self.workers if w.job is not None and w.job.job_id == job_id), None)

    def report(self) -> dict:
        """Who ran what and what the placement saved, over the last KEPT jobs: the node hit rate (nodes
        served from a worker's cache / nodes of all jobs), the nodes computed against the distinct
        ones (what one worker with room for everything would compute), and per worker its jobs and
        what it holds."""
        with self._changed:
            done = [j for j in self.finished if j.result is not None]
            nodes = sum(len(j.result.report) for j in done)
            cached = sum(r.status == "cached" for j in done for r in j.result.report)
            distinct = {key for j in done for key in j.work.types}
            model_keys = {key for j in done for key in j.work.models}
            model_loads = sum(r.status == "executed" and j.work.keys.get(r.node_id) in j.work.models
                              for j in done for r in j.result.report)
            return {
                "jobs": len(done), "nodes": nodes, "cached": cached, "executed": nodes - cached,
                "hit_rate": round(cached / nodes, 4) if nodes else None, "distinct_nodes": len(distinct),
                "model_loads": model_loads, "distinct_models": len(model_keys),
                "placed_with_affinity": self.affinity_placements,
                "reruns": {j.job_id: j.reruns for j in self.finished if j.reruns},
                "lost": list(self.lost),
                "workers": [{"name": w.name, "alive": w.alive, **{k: w.info.get(k) for k in
                             ("pid", "host", "device", "threads", "gpus")},
                             "jobs": list(w.jobs), "executed": w.executed, "cached": w.cached,
                             "models": sorted(w.models.values()), "results": len(w.view.results)}
                            for w in self.workers],
            }

    def close(self) -> None:
        """Cancel what waits, interrupt what runs, stop the workers (and Ray, if this pool started it)."""
        with self._changed:
            if self._closing:
                return
            self._closing = True
            for job in list(self._pending):
                self._pending.remove(job)
                self._end(job, "cancelled", error=Interrupted("the pool closed before it started"))
            for worker in self.workers:
                if worker.job is not None and worker.job.held:  # reserved, never started
                    job, worker.job, worker.view.running = worker.job, None, None
                    self._end(job, "cancelled", error=Interrupted("the pool closed before it started"))
            running = [w.job.job_id for w in self.workers if w.job is not None]
            self._changed.notify_all()
        for job_id in running:
            self.interrupt(job_id)
        for worker in list(self.workers):
            if worker.job is not None:
                worker.job.done.wait(30)
            ray.kill(worker.actor)
        if self.started_ray:
            ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- workers -----------------------------------------------------------------------------------

    def _salt(self) -> str:
        from latentgraph.graph.executor import cache_salt

        device = "cuda" if self.gpus else "cpu"
        return cache_salt(*_device_and_dtype(self.settings, device), self.settings.compile)

    def _add_worker(self) -> Worker:
        self._names += 1
        name = f"w{self._names}"
        # The driver's settings but the device and threads (the worker replaces the folders with its own).
        settings = dataclasses.replace(self.settings, device="cuda" if self.gpus else "cpu", threads=self.threads)
        actor = _actor_class().options(
            num_cpus=self.threads, num_gpus=1 if self.gpus else 0, max_concurrency=4, max_restarts=0,
        ).remote(name, settings, self.threads, self.previews)
        worker = Worker(WorkerView(name), actor)
        self.workers.append(worker)
        threading.Thread(target=self._lane, args=(worker,), name=f"latentgraph-{name}", daemon=True).start()
        return worker

    def _lane(self, worker: Worker) -> None:
        """The driver thread of one worker: wait for it to start, then run the jobs placed on it."""
        try:
            worker.info = ray.get(worker.actor.info.remote())
        except Exception as exc:  # noqa: BLE001 - it could not start (an import error, no resources left)
            log.error("worker %s did not start: %s", worker.name, exc)
            with self._changed:
                self._start_failures += 1
                self._retire(worker, f"did not start: {exc}", replace=self._start_failures < START_TRIES)
            return
        if worker.info.get("salt") != self._salt():  # its cache keys would never match the driver's
            log.warning("worker %s computes on %s, the driver keys jobs for %s: placement by cache affinity "
                        "will not find its work", worker.name, worker.info.get("salt"), self._salt())
        with self._changed:
            self._start_failures = 0
            worker.view.ready = True
            self._place()
        while True:
            with self._changed:
                while (worker.job is None or worker.job.held) and not self._closing:
                    self._changed.wait()
                if worker.job is None or worker.job.held:
                    return
                job = worker.job
            if not self._serve(worker, job):
                return

    def _serve(self, worker: Worker, job: PoolJob) -> bool:
        """Run one job on the worker; False when the worker died."""
        started = False
        if job.on_start is not None:
            job.on_start(worker.name)
        try:
            ray.get(worker.actor.start.remote(job.job_id, job.workflow, job.inputs))
            while True:
                for event in ray.get(worker.actor.events.remote(job.job_id)):
                    started = True
                    if event["type"] == DONE:
                        self._finish(worker, job, event)
                        return True
                    self._forward(worker, job, event)
        except RayActorError as exc:
            self._lost(worker, job, started, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - anything else ends the job, not the pool
            log.exception("job %s on %s", job.job_id, worker.name)
            error = GraphError("execution", f"worker {worker.name}: {type(exc).__name__}: {exc}")
            self._job_done(worker, job, "error", NodeError(error))
        return True

    def _forward(self, worker: Worker, job: PoolJob, event: Event) -> None:
        if event["type"] == "executed" and "images" in event:
            event = dict(event)
            event["images"] = self._collect(worker, event.pop("key"), event["images"])
        try:
            job.on_event(event)
        except Interrupted:  # the listener stops the job (as it would stop Executor.run)
            self.interrupt(job.job_id)
        except Exception:  # a listener's failure must not lose the job
            log.exception("job %s: event listener failed on %s", job.job_id, event.get("type"))

    def _collect(self, worker: Worker, key: str, images: list[dict]) -> list[dict]:
        """The images a node showed, as files in the driver's folders: newly saved ones are written
        (with the driver's own numbering), those shown again from the worker's cache are the files
        written when it made them."""
        with self._files:
            if images and all("data" in image for image in images):
                self._images[(worker.name, key)] = [self._write(image) for image in images]
            return [dict(image) for image in self._images.get((worker.name, key), [])]

    def _write(self, image: dict) -> dict:
        root = self.settings.output if image["kind"] == "output" else self.settings.temp
        prefix = _COUNTER.sub("", image["filename"])
        while True:
            path, name = output_path(root, prefix)
            try:
                with open(path, "xb") as f:  # another process may be numbering in the same folder
                    f.write(image["data"])
                return {"kind": image["kind"], "filename": name, "path": str(path)}
            except FileExistsError:
                continue

    def _finish(self, worker: Worker, job: PoolJob, done: Event) -> None:
        report = [NodeReport(r["node_id"], r["node_type"], r["status"], r["seconds"]) for r in done.get("report", [])]
        result = None
        if "report" in done:
            ui = {node_id: {**{k: v for k, v in shown.items() if k != "key"},
                            **({"images": self._collect(worker, shown["key"], shown["images"])}
                               if "images" in shown else {})}
                  for node_id, shown in done["ui"].items()}
            result = PoolRunResult(job.workflow, report, ui, done["seconds"], worker.name, list(job.reruns))
        holdings = done["holdings"]
        errors = [GraphError(**e) for e in done["errors"]]
        status = done["status"]
        error: Exception | None = None
        if status == "invalid":
            error = WorkflowInvalid(errors)
        elif status == "error":
            error = NodeError(errors[0])
        elif status == "interrupted":
            error = Interrupted()
        if error is not None:
            error.result = result
        with self._changed:
            worker.view.models, worker.view.results = set(holdings["models"]), set(holdings["results"])
            worker.models = dict(holdings["models"])
        with self._files:  # forget the images of results the worker no longer holds
            for name, key in [k for k in self._images if k[0] == worker.name and k[1] not in worker.view.results]:
                del self._images[(name, key)]
        with self._changed:
            for r in report:
                if r.status == "executed":
                    self.costs.record(r.node_type, r.seconds)
            worker.executed += sum(r.status == "executed" for r in report)
            worker.cached += sum(r.status == "cached" for r in report)
            self._job_done(worker, job, status, error, result)

    def _job_done(self, worker: Worker, job: PoolJob, status: str, error: Exception | None,
                  result: RunResult | None = None) -> None:
        with self._changed:
            worker.job, worker.view.running = None, None
            worker.jobs.append(job.job_id)
            self._end(job, status, result, error)
            self._place()

    def _lost(self, worker: Worker, job: PoolJob, started: bool, exc: Exception) -> None:
        """The worker died running `job`: replace it; run the job again, once, elsewhere."""
        reason = f"worker {worker.name} (pid {worker.info.get('pid')}, {worker.info.get('host')}) died"
        log.warning("%s while running job %s: %s", reason, job.job_id, str(exc).splitlines()[0])
        with self._changed:
            self.lost.append({"worker": worker.name, "pid": worker.info.get("pid"), "job_id": job.job_id,
                              "reason": str(exc).splitlines()[0]})
            worker.job, worker.view.running = None, None
            job.attempts += started
            if job.attempts > self.max_reruns:
                error = GraphError("worker_lost", f"{reason} while running this job, on each of its "
                                                  f"{job.attempts} tries")
                self._end(job, "error", error=NodeError(error))
            else:
                job.status, job.worker = "pending", None
                if started:
                    job.reruns.append(f"{reason} while running it; run again on another worker")
                    self._emit(job, {"type": "rerun", "reason": job.reruns[-1], "worker": worker.name})
                self._pending.append(job)
                self._pending.sort(key=lambda j: j.seq)
            self._retire(worker, reason, replace=True)

    def _retire(self, worker: Worker, reason: str, replace: bool) -> None:  # with the lock held
        worker.alive, worker.view.ready = False, False
        if replace and not self._closing:
            self._add_worker()
        if not any(w.alive for w in self.workers):  # nobody left to run what waits
            for job in list(self._pending):
                self._pending.remove(job)
                self._end(job, "error", error=NodeError(GraphError("worker_lost", f"no worker left: {reason}")))
        self._place()

    # --- placement -----------------------------------------------------------------------------------

    def _place(self) -> None:  # with the lock held
        if self._closing:
            return
        alive = [w for w in self.workers if w.alive]
        by_name = {w.name: w for w in alive}
        for placed in assign([(job, job.work) for job in self._pending], [w.view for w in alive], self.costs):
            self._pending.remove(placed.job)
            self._start_on(placed.job, by_name[placed.worker.name], placed.affinity)
        self._changed.notify_all()

    def _start_on(self, job: PoolJob, worker: Worker, affinity: tuple) -> None:  # with the lock held
        job.status, job.worker = "running", worker.name
        worker.job, worker.view.running = job, job.work
        worker.view.jobs += 1
        self.affinity_placements += affinity > (0, 0)
        if job.interrupt_requested:
            worker.actor.interrupt.remote(job.job_id)

    def _end(self, job: PoolJob, status: str, result: RunResult | None = None,
             error: Exception | None = None) -> None:  # with the lock held
        job.status, job.result, job.error = status, result, error
        job.inputs = {}
        self.finished.append(job)
        job.done.set()
        self._changed.notify_all()

    def _emit(self, job: PoolJob, event: Event) -> None:
        try:
            job.on_event(event)
        except Exception:
            log.exception("job %s: event listener failed on %s", job.job_id, event.get("type"))


def _actor_class():
    return ray.remote(ExecutorWorker)  # made after ray.init: under Ray Client it is a client class


def _device_and_dtype(settings: Settings, device: str):
    """The torch device and dtype a worker on `device` will use (without touching a GPU here)."""
    import torch

    worker = Settings(device="cpu", dtype=settings.dtype)
    dtype = worker.torch_dtype() if settings.dtype else (torch.float16 if device == "cuda" else torch.float32)
    return torch.device(device), dtype
