"""Cache-affinity placement: which worker of a pool runs which job.

Plain bookkeeping without Ray, so that the rule reads in one place and is tested on its own:

- A job's work is the cache keys of the nodes it would run, computed on the driver without loading
  a model (`graph.executor.plan_keys`); the keys of the nodes that load models are marked.
- A worker holds the keys it reported after its last job (loaded models and cached results) and
  the keys of the job it runs now (it will hold them when that job ends).
- A worker's affinity for a job is (how many of the job's models it holds, how many seconds of the
  job's other work it holds), compared in that order: the loaded checkpoint first, then cached
  results, each node weighted by how long its type took when it last ran (1 s until measured).
- Jobs are taken in queue order. A job goes to the idle worker with the highest affinity (ties:
  the one given fewest jobs), unless a busy worker holds more of it: then it waits for that worker.
  That keeps a sweep's shared upstream work (a prompt's text encoding, a checkpoint) on one worker:
  the sweep runs in slices. A worker is never left idle while jobs wait: it takes the waiting job
  that the busy workers lead on least.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
WINDOW = 256  # pending jobs looked at per placement: bounds its cost on long queues
Affinity = tuple[int, float]


@dataclass(frozen=True)
class Work:
    """What a job computes: its nodes' cache keys."""

    keys: dict[str, str]  # node id -> cache key
    types: dict[str, str]  # cache key -> node type (each distinct key once)
    models: frozenset[str] = frozenset()  # the keys of nodes that load models (checkpoints, VAEs...)

    @classmethod
    def of(cls, keys: dict[str, str], node_types: dict[str, str], loads_models: Iterable[str]) -> Work:
        """From node id -> key, node id -> node type, and the ids of the nodes that load models."""
        return cls(dict(keys), {keys[n]: node_types[n] for n in keys}, frozenset(keys[n] for n in loads_models))


@dataclass
class WorkerView:
    """The driver's picture of one worker."""

    name: str
    models: set[str] = field(default_factory=set)  # loaded-model keys it reported
    results: set[str] = field(default_factory=set)  # cached result keys it reported
    running: Work | None = None
    ready: bool = False  # started and serving
    jobs: int = 0  # jobs given to it so far

    def holds(self, key: str) -> bool:
        return key in self.models or key in self.results or (self.running is not None and key in self.running.types)


class NodeCosts:
    """Seconds each node type took when it ran, as a moving average; `default` until measured."""

    def __init__(self, default: float = 1.0, weight: float = 0.3):
        self.default, self.weight = default, weight
        self.seconds: dict[str, float] = {}

    def record(self, node_type: str, seconds: float) -> None:
        old = self.seconds.get(node_type)
        self.seconds[node_type] = seconds if old is None else old + self.weight * (seconds - old)

    def __getitem__(self, node_type: str) -> float:
        return self.seconds.get(node_type, self.default)


def affinity(worker: WorkerView, work: Work, costs: NodeCosts, also: Work | None = None) -> Affinity:
    """(models of `work` the worker holds, seconds of its other work it holds); `also`: a job just
    given to the worker, counted as held."""
    held = [key for key in work.types if worker.holds(key) or (also is not None and key in also.types)]
    models = sum(key in work.models for key in held)
    return models, round(sum(costs[work.types[key]] for key in held if key not in work.models), 6)


@dataclass
class Placed(Generic[T]):
    job: T
    worker: WorkerView
    affinity: Affinity  # what the worker held of the job when it was placed


def assign(pending: list[tuple[T, Work]], workers: list[WorkerView], costs: NodeCosts,
           window: int = WINDOW) -> list[Placed[T]]:
    """Which pending jobs (in queue order) start now, and where. Does not change `workers`."""
    idle = [w for w in workers if w.ready and w.running is None]
    given: dict[str, Work] = {}  # jobs placed in this call, by worker
    busy = [w for w in workers if w.ready and w.running is not None]
    load = {w.name: w.jobs for w in workers}
    placed: list[Placed[T]] = []

    def aff(worker: WorkerView, work: Work) -> Affinity:
        return affinity(worker, work, costs, given.get(worker.name))

    def take(job: T, work: Work, worker: WorkerView) -> None:
        placed.append(Placed(job, worker, aff(worker, work)))
        idle.remove(worker)
        busy.append(worker)
        given[worker.name] = work
        load[worker.name] += 1

    waiting: list[tuple[T, Work]] = []
    for job, work in pending[:window]:
        if not idle:
            break
        best = max(idle, key=lambda w: (aff(w, work), -load[w.name]))
        lead = max((aff(w, work) for w in busy), default=None)
        if lead is not None and lead > aff(best, work):
            waiting.append((job, work))  # a busy worker holds more of it
        else:
            take(job, work, best)

    while idle and waiting:
        def gap(choice: tuple[int, int]) -> tuple:
            index, worker = choice
            work = waiting[index][1]
            lead, mine = max(aff(w, work) for w in busy), aff(worker, work)
            return lead[0] - mine[0], lead[1] - mine[1], index, load[worker.name]

        index, worker = min(((i, w) for i in range(len(waiting)) for w in idle), key=gap)
        job, work = waiting.pop(index)
        take(job, work, worker)
    return placed
