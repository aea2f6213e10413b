"""Node types. Each module declares its nodes with `latentgraph.nodes.spec.node`."""
from __future__ import annotations

import importlib

from latentgraph.nodes import packs
from latentgraph.nodes.spec import REGISTRY, NodeSpec

# Modules that declare node types; imported on first use of the registry.
NODE_MODULES = ("loaders", "lora", "conditioning", "conditioning_ops", "latent", "sampling", "image", "masks",
                "sdxl", "advanced_sampling",
                "controlnet", "preprocessors", "model_sampling", "canvas", "batches", "latent_compose",
                "custom_sampling", "latent_ops", "step_cache")


def registry() -> dict[str, NodeSpec]:
    for module in NODE_MODULES:
        importlib.import_module(f"latentgraph.nodes.{module}")
    packs.load()  # then the node types of installed node packs (nodes/packs.py), once
    return REGISTRY
