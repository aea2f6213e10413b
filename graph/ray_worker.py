"""One pool worker: a long-lived Executor on one device, run as a Ray actor by `graph.ray_pool`.

The worker keeps its Executor, so loaded models and cached intermediate results stay on its device
between jobs. It needs no shared filesystem but for the models folder: the driver sends the job's
input images along with it, and the images the job saves come back as PNG bytes (written into a
private scratch folder first, then read and deleted), which the driver writes into its own output
folder. A job runs in a thread of the worker; the driver fetches its events as they come (a long poll,
which also works through Ray Client, where streaming generators do not); the last one, `_done`,
carries the outcome, the node report and what the worker now holds.

The actor is threaded (see ray_pool), so `interrupt` and `holdings` are answered while a job runs.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import queue
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import torch

from latentgraph.graph.errors import GraphError, Interrupted, NodeError, WorkflowInvalid
from latentgraph.graph.executor import Executor, RunResult
from latentgraph.graph.settings import Settings

DONE = "_done"  # the type of a job's last event


class ExecutorWorker:
    def __init__(self, name: str, settings: Settings, threads: int, previews: bool = True):
        """`settings`: the driver's, for this worker's device; the folders for inputs, outputs and
        previews are replaced by this worker's scratch folders. `threads`: torch threads on the CPU."""
        from latentgraph.cli import _quiet_libraries

        torch.set_num_threads(threads)
        _quiet_libraries()  # loading bars from a worker would land in the driver's terminal
        self.name, self.threads = name, threads
        self.scratch = Path(tempfile.mkdtemp(prefix=f"latentgraph-{name}-"))
        atexit.register(shutil.rmtree, self.scratch, True)
        folders = {sub: self.scratch / sub for sub in ("input", "output", "temp")}
        for folder in folders.values():
            folder.mkdir()
        self.executor = Executor(dataclasses.replace(settings, **folders), previews=previews)
        self._interrupt_for: str | None = None  # the job id an interrupt was asked for
        self._running: str | None = None
        self._events: dict[str, queue.Queue] = {}  # job id -> its events not yet fetched
        self._labels: dict[str, str] = {}  # loaded model key -> what it is, for reports

    def info(self) -> dict:
        import ray

        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                "ip": ray.util.get_node_ip_address(), "device": str(self.executor.device),
                "dtype": str(self.executor.dtype).removeprefix("torch."),
                "salt": self.executor._salt,
                "threads": self.threads, "gpus": [str(g) for g in ray.get_gpu_ids()]}

    def interrupt(self, job_id: str) -> None:
        """Stop the job `job_id` at its next node or sampler step (also if it has not started yet)."""
        self._interrupt_for = job_id
        if self._running == job_id:
            self.executor.interrupt()

    def holdings(self) -> dict:
        """What this worker holds: loaded model keys (with what they are) and cached result keys."""
        cache = self.executor.cache
        with cache.models.lock:
            models = {key: self._labels.get(key, "") for key in cache.models.entries}
        with cache.results.lock:
            results = list(cache.results.entries)
        self._labels = {key: label for key, label in self._labels.items() if key in models}
        return {"models": models, "results": results}

    def start(self, job_id: str, workflow: dict, inputs: dict[str, bytes]) -> None:
        """Start one job (in a thread of its own); `inputs`: the input images it reads, by name."""
        for name, data in inputs.items():
            path = self.executor.settings.input / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        self._events[job_id] = events = queue.Queue()
        threading.Thread(target=self._run, args=(job_id, workflow, events.put), daemon=True).start()

    def events(self, job_id: str, wait: float = 1.0) -> list[dict]:
        """The job's events since the last call, waiting up to `wait` seconds for the first; the
        last one of a job is `_done`."""
        events = self._events[job_id]
        try:
            batch = [events.get(timeout=wait)]
        except queue.Empty:
            return []
        while batch[-1]["type"] != DONE and not events.empty():
            batch.append(events.get_nowait())
        if batch[-1]["type"] == DONE:
            del self._events[job_id]
        return batch

    def _run(self, job_id: str, workflow: dict, put) -> None:
        done: dict = {"type": DONE, "status": "success", "errors": []}
        keys: dict[str, str] = {}

        def on_event(event: dict) -> None:
            if self._interrupt_for == job_id and event["type"] in ("executing", "progress"):
                raise Interrupted()  # asked for before the executor cleared its flag
            if event["type"] == "executed" and event.get("images"):
                event = dict(event, images=self._ship(event["images"], event["cached"]), key=keys[event["node_id"]])
            put(event)

        result: RunResult | None = None
        self._running = job_id
        try:
            keys.update(self.executor.keys(workflow))
            self._label_models(workflow, keys)
            result = self.executor.run(workflow, on_event=on_event)
        except WorkflowInvalid as exc:
            done.update(status="invalid", errors=[e.to_json() for e in exc.errors])
        except NodeError as exc:
            done.update(status="error", errors=[exc.error.to_json()])
            result = getattr(exc, "result", None)
        except Interrupted as exc:
            done.update(status="interrupted")
            result = getattr(exc, "result", None)
        except Exception as exc:  # noqa: BLE001 - reported on the job; the worker keeps serving
            error = GraphError("execution", f"worker {self.name}: {type(exc).__name__}: {exc}")
            done.update(status="error", errors=[error.to_json()])
        finally:
            self._running = None
            if self._interrupt_for == job_id:
                self._interrupt_for = None
        if result is not None:
            done.update(report=[r.to_json() for r in result.report], seconds=result.seconds,
                        ui={node_id: {**ui, "key": keys[node_id], "images": self._ship(ui.get("images", []), True)}
                            for node_id, ui in result.ui.items()})
        put({**done, "holdings": self.holdings()})

    def _ship(self, images: list[dict], cached: bool) -> list[dict]:
        """Images as the driver gets them: newly saved ones with their PNG bytes (the scratch file is
        then deleted); those an output node shows again from the cache without them (the driver
        already has them, by node key)."""
        shipped = []
        for image in images:
            image = {k: v for k, v in image.items() if k != "path"}
            settings = self.executor.settings
            path = (settings.output if image["kind"] == "output" else settings.temp) / image["filename"]
            if not cached and path.is_file():
                image["data"] = path.read_bytes()
                path.unlink()
            shipped.append(image)
        return shipped

    def _label_models(self, workflow: dict, keys: dict[str, str]) -> None:
        from latentgraph.graph.workflow import load_workflow
        from latentgraph.nodes import registry

        specs = registry()
        for node_id, node in load_workflow(workflow)["nodes"].items():
            spec = specs.get(node.get("type"))
            if node_id in keys and spec is not None and spec.holds_models:
                named = [str(v) for i, v in node.get("inputs", {}).items()
                         if (inp := spec.input(i)) is not None and inp.file_folder]
                self._labels[keys[node_id]] = f"{spec.name}({', '.join(named)})"

