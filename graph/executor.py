"""The executor: runs the nodes an output needs, in topological order, reusing cached results.

Changing an input changes the keys of that node and of everything downstream of it, and of
nothing else, so exactly that part re-runs. Results stay on the compute device; the cache keeps
them within its memory budget. A failing node stops the run with an error naming it; everything
cached before it stays valid.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from latentgraph.graph import cache as cache_mod
from latentgraph.graph.errors import GraphError, InputError, Interrupted, NodeError, WorkflowInvalid, describe
from latentgraph.graph.settings import Settings
from latentgraph.graph.validate import Plan, validate
from latentgraph.graph.workflow import load_workflow
from latentgraph.nodes import folders
from latentgraph.nodes.values import model_bytes, model_modules, nbytes

Event = dict
PREVIEW_EVERY = 3  # sampler steps between two live previews


@dataclass
class NodeReport:
    node_id: str
    node_type: str
    status: str  # executed | cached | error
    seconds: float

    def to_json(self) -> dict:
        return {"node_id": self.node_id, "node_type": self.node_type, "status": self.status,
                "seconds": round(self.seconds, 4)}


@dataclass
class RunResult:
    workflow: dict
    report: list[NodeReport] = field(default_factory=list)
    ui: dict[str, dict] = field(default_factory=dict)  # node id -> what the output node showed
    seconds: float = 0.0

    @property
    def images(self) -> list[dict]:
        """Saved and preview images: {"node_id", "path", "filename", "kind"}."""
        return [dict(image, node_id=node_id) for node_id, ui in self.ui.items() for image in ui.get("images", [])]

    def status(self, node_id: str) -> str | None:
        return next((r.status for r in self.report if r.node_id == node_id), None)

    def to_json(self) -> dict:
        return {"nodes": [r.to_json() for r in self.report], "seconds": round(self.seconds, 4),
                "images": [{k: str(v) for k, v in i.items()} for i in self.images]}


class NodeContext:
    """What a node's function may use besides its inputs."""

    def __init__(self, executor: Executor, node_id: str, node_type: str, workflow: dict,
                 emit: Callable[[Event], None]):
        self.executor = executor
        self.settings = executor.settings
        self.device = executor.device
        self.dtype = executor.dtype
        self.node_id, self.node_type, self.workflow = node_id, node_type, workflow
        self.ui: dict[str, Any] = {}
        self._emit = emit

    def check_interrupt(self) -> None:
        if self.executor._interrupt.is_set():
            raise Interrupted()

    def progress(self, step: int, total: int, preview: Callable[[], Any] | None = None) -> None:
        """Report sampler progress; `preview` lazily makes a small PIL image of the current latents."""
        self._emit({"type": "progress", "node_id": self.node_id, "step": step, "total": total})
        if preview is not None and self.executor.previews and (step % PREVIEW_EVERY == 0 or step == total):
            image = preview()
            if image is not None:
                self._emit({"type": "preview", "node_id": self.node_id, "image": image})
        self.check_interrupt()

    def show(self, **ui) -> None:
        """Results an output node shows the user (e.g. images=[...]); cached with its outputs."""
        self.ui.update(ui)


class Executor:
    """Runs workflows; keeps loaded models and intermediate results across runs."""

    def __init__(self, settings: Settings | None = None, previews: bool = False):
        self.settings = settings or Settings()
        self.device = self.settings.torch_device()
        self.dtype = self.settings.torch_dtype()
        self.settings.apply_threads()
        self.cache = cache_mod.ResultCache(*self.settings.budgets())
        self.previews = previews
        self._interrupt = threading.Event()
        self._lock = threading.Lock()  # one run at a time
        self._salt = cache_salt(self.device, self.dtype, self.settings.compile)

    def interrupt(self) -> None:
        self._interrupt.set()

    def loaded_models(self) -> list[tuple]:
        """The outputs of the loaders whose models are held: (MODEL, CLIP, VAE) per checkpoint, (VAE,) per VAELoader."""
        with self.cache.models.lock:
            return [entry.outputs for entry in self.cache.models.entries.values()]

    def validate(self, workflow: Any) -> list[GraphError]:
        return validate(load_workflow(workflow), self.settings)[1]

    def keys(self, workflow: Any) -> dict[str, str]:
        """The cache key of each node that would run."""
        plan, errors = validate(load_workflow(workflow), self.settings)
        if errors:
            raise WorkflowInvalid(errors)
        return self._keys(plan, plan.order())

    def run(self, workflow: Any, on_event: Callable[[Event], None] | None = None) -> RunResult:
        """Run a workflow (any accepted format). Raises WorkflowInvalid before running anything,
        NodeError when a node fails, Interrupted when interrupted; each carries `.result`."""
        with self._lock:
            self._interrupt.clear()
            emit = on_event or (lambda event: None)
            doc = load_workflow(workflow)
            plan, errors = validate(doc, self.settings)
            if errors:
                raise WorkflowInvalid(errors)
            return self._execute(doc, plan, emit)

    def sweep(self, workflow: Any, sweep: Any, **options):
        """Run every job of a sweep (see `latentgraph.graph.sweep`) with this executor's cache, the
        jobs ordered so that shared upstream work runs once. Options: on_event, on_job, confirm,
        max_jobs. Returns a SweepResult: per-job results, `totals()`, `report()`, `save_grid(path)`."""
        from latentgraph.graph.sweep import run_sweep

        return run_sweep(self, workflow, sweep, **options)

    def _execute(self, doc: dict, plan: Plan, emit: Callable[[Event], None]) -> RunResult:
        result = RunResult(workflow=doc)
        started = time.perf_counter()
        order = plan.order()
        keys = self._keys(plan, order)
        consumers = {n: plan.graph.out_degree(n) for n in order}
        values: dict[str, tuple] = {}  # results this run still needs
        cached_ids = [n for n in order if self.cache.get(keys[n]) is not None]
        if cached_ids:
            emit({"type": "cached", "node_ids": cached_ids})
        try:
            for node_id in order:
                node = plan.nodes[node_id]
                t0 = time.perf_counter()
                entry = self.cache.get(keys[node_id])
                if entry is not None:
                    status = "cached"
                else:
                    emit({"type": "executing", "node_id": node_id, "node_type": node.spec.name})
                    entry = self._run_node(plan, node, values, doc, emit)
                    self.cache.store(keys[node_id], entry, node.spec.holds_models)
                    status = "executed"
                values[node_id] = entry.outputs
                if entry.ui:
                    result.ui[node_id] = entry.ui
                result.report.append(NodeReport(node_id, node.spec.name, status, time.perf_counter() - t0))
                if status == "executed" or entry.ui:
                    emit({"type": "executed", "node_id": node_id, "node_type": node.spec.name,
                          "cached": status == "cached", **entry.ui})
                for upstream in plan.graph.predecessors(node_id):
                    consumers[upstream] -= 1
                    if consumers[upstream] == 0:
                        values.pop(upstream, None)  # the cache may still hold it
        except (NodeError, Interrupted) as exc:
            failed = exc.error.node_id if isinstance(exc, NodeError) else None
            if failed is not None:
                result.report.append(NodeReport(failed, plan.nodes[failed].spec.name, "error", 0.0))
            result.seconds = time.perf_counter() - started
            exc.result = result
            if isinstance(exc, Interrupted):
                emit({"type": "interrupted"})
            else:
                emit({"type": "error", **exc.error.to_json()})
            raise
        result.seconds = time.perf_counter() - started
        return result

    def _run_node(self, plan: Plan, node, values: dict[str, tuple], doc: dict, emit) -> cache_mod.Entry:
        spec = node.spec
        kwargs = dict(node.values)
        for name, (upstream, output) in node.links.items():
            kwargs[name] = values[upstream][plan.nodes[upstream].spec.output_index(output)]
        ctx = NodeContext(self, node.id, spec.name, doc, emit)
        try:
            # no_grad rather than inference mode: nodes that load or adapt models (checkpoints,
            # LoRAs) must leave ordinary tensors that later users of the same modules can change.
            with torch.no_grad():
                outputs = spec.function(ctx, **kwargs)
        except Interrupted:
            raise
        except InputError as exc:
            raise NodeError(GraphError("execution", f"{describe(node.id, spec.name, exc.input_name)}: {exc}",
                                       node.id, spec.name, exc.input_name)) from exc
        except Exception as exc:  # any failure inside a node is reported against that node
            message = f"{describe(node.id, spec.name)}: {type(exc).__name__}: {exc}"
            raise NodeError(GraphError("execution", message, node.id, spec.name, None)) from exc
        outputs = tuple(outputs or ())
        if len(outputs) != len(spec.outputs):
            raise NodeError(GraphError("execution", f"{describe(node.id, spec.name)}: returned {len(outputs)} "
                                                    f"values for {len(spec.outputs)} outputs", node.id, spec.name))
        size = model_bytes(outputs) if spec.holds_models else nbytes(outputs)
        return cache_mod.Entry(outputs, ctx.ui, size, frozenset(model_modules(outputs)))

    def _keys(self, plan: Plan, order: list[str]) -> dict[str, str]:
        return plan_keys(plan, order, self.settings, self._salt)


def cache_salt(device: torch.device, dtype: torch.dtype, compiled: bool = False) -> str:
    """Cache keys depend on where and how results were computed."""
    return f"{device.type}:{dtype}" + (":compiled" if compiled else "")


def plan_keys(plan: Plan, order: list[str], settings: Settings, salt: str) -> dict[str, str]:
    """The cache key of each node in `order`; no model is loaded (a scheduler can place jobs by them)."""
    keys: dict[str, str] = {}
    for node_id in order:
        node = plan.nodes[node_id]
        files = {}
        for inp in node.spec.inputs:
            if inp.file_folder and inp.name in node.values:
                path = folders.resolve_file(settings, inp.file_folder, node.values[inp.name])
                files[inp.name] = cache_mod.file_digest(path) if path is not None else "missing"
        upstream = {name: (keys[src], out) for name, (src, out) in node.links.items()}
        keys[node_id] = cache_mod.node_key(node.spec.name, node.spec.cache_version, node.values, upstream, files,
                                           salt)
    return keys
