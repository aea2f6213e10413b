"""ComfyUI's `/object_info`: our node catalog in the shape ComfyUI clients read.

Per node type: `input` ({"required": {name: [TYPE or [choices], {options}]}, "optional": {...}}),
`input_order`, `output` (types), `output_is_list`, `output_name`, `name`, `display_name`,
`description`, `python_module`, `category`, `output_node` and `output_tooltips`. The options are
ComfyUI's: default, min, max, step, round, multiline, tooltip, image_upload and
control_after_generate. Generated from the same declarations as our own catalog.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from latentgraph.nodes.spec import COMBO, FLOAT, Input, NodeSpec

OPTIONS = ("default", "min", "max", "step")


def input_entry(inp: Input, choices: Sequence[str] | None) -> list:
    """[TYPE, {options}], or [[choices], {options}] for a choice list, as ComfyUI's INPUT_TYPES."""
    options = {key: getattr(inp, key) for key in OPTIONS if getattr(inp, key) is not None}
    if inp.type == FLOAT and inp.round is not None:
        options["round"] = inp.round
    for flag in ("multiline", "image_upload", "control_after_generate"):
        if getattr(inp, flag):
            options[flag] = True
    if inp.tooltip:
        options["tooltip"] = inp.tooltip
    kind = list(choices if choices is not None else inp.choices or []) if inp.type == COMBO else inp.type
    return [kind, options] if options else [kind]


def node_info(spec: NodeSpec, resolve: Callable[[Input], Sequence[str] | None]) -> dict:
    groups: dict[str, dict] = {"required": {}}
    for inp in spec.inputs:
        choices = resolve(inp) if inp.choices_from else None
        groups.setdefault("required" if inp.required else "optional", {})[inp.name] = input_entry(inp, choices)
    return {
        "input": groups,
        "input_order": {group: list(entries) for group, entries in groups.items()},
        "output": [o.type for o in spec.outputs],
        "output_is_list": [False] * len(spec.outputs),
        "output_name": [o.name for o in spec.outputs],
        "name": spec.name,
        "display_name": spec.display_name or spec.name,
        "description": spec.description,
        "python_module": f"custom_nodes.{spec.pack}" if spec.pack else "nodes",
        "category": spec.category,
        "output_node": spec.output_node,
        "output_tooltips": [o.tooltip for o in spec.outputs],
    }


def object_info(specs: dict[str, NodeSpec], resolve: Callable[[Input], Sequence[str] | None]) -> dict:
    """{node type: node_info} for every node type, sorted by name."""
    return {name: node_info(spec, resolve) for name, spec in sorted(specs.items())}
