"""The one declaration per node type.

A node type is declared once, with `@node(...)`: its name, category, description, typed inputs
and outputs, and the function that runs it. Validation, the executor, the CLI's `nodes` listing,
the editor's widgets (through the JSON catalog) and the docs all read that declaration.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Socket types: values that flow along links between nodes.
MODEL, CLIP, VAE, CONDITIONING, LATENT, IMAGE = "MODEL", "CLIP", "VAE", "CONDITIONING", "LATENT", "IMAGE"
MASK = "MASK"  # float tensors in [0, 1], shaped (batch, height, width); 1 = the part to repaint
CONTROL_NET = "CONTROL_NET"
# Custom sampling's parts (nodes/custom_sampling.py): a solver, the steps to run, the noise, the guidance.
SAMPLER, SIGMAS, NOISE, GUIDER = "SAMPLER", "SIGMAS", "NOISE", "GUIDER"
SOCKET_TYPES = (MODEL, CLIP, VAE, CONDITIONING, LATENT, IMAGE, MASK, CONTROL_NET, SAMPLER, SIGMAS, NOISE, GUIDER)
# Value types: constants held by widgets (they may also be fed by a link of the same type).
INT, FLOAT, STRING, BOOLEAN, COMBO = "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"
VALUE_TYPES = (INT, FLOAT, STRING, BOOLEAN, COMBO)

SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Input:
    name: str
    type: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    round: float | None = None
    choices: Sequence[str] | None = None
    # Choice lists that depend on the folders (checkpoints, input images) name their source here;
    # they are resolved against the running configuration by `resolve_choices`.
    choices_from: str | None = None
    # Values users may know from ComfyUI that we refuse, each with the reason.
    refused_choices: dict[str, str] | None = None
    multiline: bool = False
    tooltip: str = ""
    required: bool = True
    control_after_generate: bool = False  # a seed: the editor offers randomize/fixed/increment
    image_upload: bool = False
    # A file input's value names a file in a folder; the file's content enters the cache key.
    file_folder: str | None = None

    @property
    def is_socket(self) -> bool:
        return self.type in SOCKET_TYPES

    def to_json(self, choices: Sequence[str] | None = None) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        for key in ("default", "min", "max", "step", "round", "choices_from"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.type == COMBO:
            out["choices"] = list(choices if choices is not None else self.choices or [])
        for key in ("multiline", "control_after_generate", "image_upload"):
            if getattr(self, key):
                out[key] = True
        if self.tooltip:
            out["tooltip"] = self.tooltip
        return out


@dataclass(frozen=True)
class Output:
    name: str
    type: str
    tooltip: str = ""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    category: str
    description: str
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    function: Callable[..., tuple]
    display_name: str = ""
    output_node: bool = False  # produces a result for the user (SaveImage, PreviewImage)
    version: int = 1  # bump when the node's results change for the same inputs: it enters cache keys
    holds_models: bool = False  # its outputs are loaded models, cached apart from intermediate results
    pack: str | None = None  # the node pack (distribution name) that declared it; None: built in
    pack_version: str | None = None
    # Extra validation across inputs, after each input was checked on its own: returns
    # (input name, message) pairs.
    check: Callable[[dict], list[tuple[str, str]]] | None = None

    @property
    def cache_version(self) -> int | str:
        """What enters cache keys: the node's version, and a pack's node also its pack's version."""
        return self.version if self.pack is None else f"{self.pack}=={self.pack_version}/{self.version}"

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output_index(self, name: str) -> int | None:
        return next((n for n, o in enumerate(self.outputs) if o.name == name), None)

    def to_json(self, resolve: Callable[[Input], Sequence[str] | None] | None = None) -> dict:
        return {
            "name": self.name,
            "display_name": self.display_name or self.name,
            "category": self.category,
            "description": self.description,
            "version": self.version,
            "output_node": self.output_node,
            "inputs": [i.to_json(resolve(i) if resolve and i.choices_from else None) for i in self.inputs],
            "outputs": [{"name": o.name, "type": o.type, **({"tooltip": o.tooltip} if o.tooltip else {})}
                        for o in self.outputs],
            **({"pack": self.pack, "pack_version": self.pack_version} if self.pack else {}),
        }


def start_before_end(start: str = "start", end: str = "end") -> Callable[[dict], list[tuple[str, str]]]:
    """A node check refusing an `end` input set below its `start` input (linked values are not checked)."""
    def check(values: dict) -> list[tuple[str, str]]:
        first, last = values.get(start), values.get(end)
        if isinstance(first, (int, float)) and isinstance(last, (int, float)) and last < first:
            return [(end, f"{end} {last} is before {start} {first}")]
        return []
    return check


REGISTRY: dict[str, NodeSpec] = {}
LOADING_PACK: str | None = None  # the node pack being imported (nodes/packs.py), for clear refusals


def node(name: str, *, category: str, description: str, inputs: Sequence[Input],
         outputs: Sequence[Output], **options) -> Callable[[Callable], Callable]:
    """Declare a node type. The decorated function gets the execution context and the inputs as
    keyword arguments, and returns a tuple with one value per output."""
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: duplicate input names")

    def register(function: Callable) -> Callable:
        if name in REGISTRY:
            if LOADING_PACK is not None:
                owner = REGISTRY[name].pack
                raise ValueError(f"node pack {LOADING_PACK} may not replace the node type {name!r} "
                                 f"({f'from the pack {owner}' if owner else 'built in'})")
            raise ValueError(f"node type {name} declared twice")
        REGISTRY[name] = NodeSpec(name=name, category=category, description=description,
                                  inputs=tuple(inputs), outputs=tuple(outputs), function=function,
                                  **options)
        return function

    return register


def catalog(resolve: Callable[[Input], Sequence[str] | None] | None = None) -> dict:
    """The JSON node catalog read by the editor and the docs, with the node packs found (and those
    left out, with the reason)."""
    from latentgraph.nodes import packs

    return {
        "version": 1,
        "socket_types": list(SOCKET_TYPES),
        "value_types": list(VALUE_TYPES),
        "nodes": {name: spec.to_json(resolve) for name, spec in sorted(REGISTRY.items())},
        "packs": [pack.to_json() for pack in packs.loaded()],
        "failed_packs": [pack.to_json() for pack in packs.failed()],
    }
