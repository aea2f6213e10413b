"""latentgraph: node-graph workflows for diffusion image generation.

Python API (the same JSON workflows as the CLI and the editor):

    from latentgraph import Executor, Settings, Workflow

    wf = Workflow()
    ckpt = wf.add("CheckpointLoaderSimple", ckpt_name="tiny-shapes")
    ...
    result = Executor(Settings(output="out")).run(wf.to_json())
    print(result.images)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Heavy modules (torch, diffusers) load on first use, so that `latentgraph --help` starts fast.
_EXPORTS = {
    "Workflow": "latentgraph.graph.workflow", "load_workflow": "latentgraph.graph.workflow",
    "Settings": "latentgraph.graph.settings",
    "Executor": "latentgraph.graph.executor", "RunResult": "latentgraph.graph.executor",
    "WorkflowInvalid": "latentgraph.graph.errors", "NodeError": "latentgraph.graph.errors",
    "Interrupted": "latentgraph.graph.errors", "GraphError": "latentgraph.graph.errors",
    "WorkflowFormatError": "latentgraph.graph.errors", "Limits": "latentgraph.graph.limits",
    "Sweep": "latentgraph.graph.sweep", "SweepInvalid": "latentgraph.graph.sweep",
    "sweep_from_png": "latentgraph.graph.png_metadata",
}
__all__ = sorted(_EXPORTS) + ["run"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'latentgraph' has no attribute {name!r}")


def run(workflow, **settings):
    """Run one workflow (a dict, JSON text, a path or a `Workflow`) with a fresh executor."""
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings

    if hasattr(workflow, "to_json"):
        workflow = workflow.to_json()
    return Executor(Settings(**settings)).run(workflow)
