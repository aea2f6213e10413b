"""ComfyUI workflows, converted into our format as they are opened.

Two shapes are read (docs/comfyui.md):
- the API format that ComfyUI queues: `{id: {"class_type": T, "inputs": {name: value | [id, slot]}}}`;
- the UI format that its editor saves (and embeds in PNGs): `nodes` with positional
  `widgets_values` (a seed is followed by its `control_after_generate` value), and `links` as
  `[link_id, origin_id, origin_slot, target_id, target_slot, type]` (or objects with those names).
  PrimitiveNode values go into the widgets they feed, Reroute chains are followed to their source,
  Note and MarkdownNote are dropped, muted (mode 2) and bypassed (mode 4) nodes keep that mode.

A node type we do not implement stays in the result under its name, so that validation reports it
by type and id before anything runs and the editor can show it. Only a muted or bypassed one is
dropped, as ComfyUI itself never sends those to its backend (a bypassed one is wired through).
"""
from __future__ import annotations

from typing import Any

from latentgraph.graph.workflow import FORMAT, VERSION, WorkflowFormatError, link
from latentgraph.nodes import registry

CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
NOTES = ("Note", "MarkdownNote")
MODES = {2: "muted", 4: "bypassed"}  # ComfyUI: 0 always, 1 on event (runs), 2 never, 4 bypass
# Inputs that ComfyUI's API format may carry for its editor only.
EDITOR_ONLY_INPUTS = ("upload",)


def convert(doc: dict, kind: str) -> dict:
    """Our format from a ComfyUI document of `kind` ('comfyui-api' or 'comfyui-ui')."""
    if kind == "comfyui-api":
        return _from_api(doc)
    if kind == "comfyui-ui":
        return _from_ui(doc)
    raise WorkflowFormatError(f"not a ComfyUI workflow kind: {kind!r}")


def _workflow(nodes: dict, ui: dict | None = None) -> dict:
    out = {"format": FORMAT, "version": VERSION, "nodes": nodes}
    if ui:
        out["ui"] = ui
    return out


def _output_name(node_type: str, slot: Any, fallback: str | None = None) -> str:
    """Our name of a node type's output slot; '#slot' when unknown (validation then names the problem)."""
    spec = registry().get(node_type)
    if spec is not None and isinstance(slot, int) and 0 <= slot < len(spec.outputs):
        return spec.outputs[slot].name
    return fallback or f"#{slot}"


# --- API format --------------------------------------------------------------------------------

def _from_api(doc: dict) -> dict:
    specs = registry()
    nodes = {}
    for node_id, node in doc.items():
        node_type = node.get("class_type")
        if not isinstance(node_type, str):
            raise WorkflowFormatError(f"ComfyUI node {node_id!r}: 'class_type' must be a string")
        raw_inputs = node.get("inputs") or {}
        if not isinstance(raw_inputs, dict):
            raise WorkflowFormatError(f"ComfyUI node {node_id!r}: 'inputs' must be an object")
        spec = specs.get(node_type)
        inputs = {}
        for name, value in raw_inputs.items():
            if spec is not None and name in EDITOR_ONLY_INPUTS and spec.input(name) is None:
                continue
            if _is_api_link(value):
                source = doc.get(str(value[0]), {})
                inputs[name] = link(value[0], _output_name(source.get("class_type", ""), value[1]))
            else:
                inputs[name] = value
        out = {"type": node_type, "inputs": inputs}
        title = (node.get("_meta") or {}).get("title")
        if isinstance(title, str) and title != node_type:
            out["title"] = title
        nodes[str(node_id)] = out
    return _workflow(nodes)


def _is_api_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and isinstance(value[1], int) and not isinstance(value[1], bool))


# --- UI format ---------------------------------------------------------------------------------

class _Graph:
    """A ComfyUI editor document: nodes by id, links by id, resolving reroutes and primitives."""

    def __init__(self, doc: dict):
        if not isinstance(doc.get("nodes"), list):
            raise WorkflowFormatError("ComfyUI workflow: 'nodes' must be a list")
        self.nodes = {str(n["id"]): n for n in doc["nodes"] if isinstance(n, dict) and "id" in n}
        self.links: dict[Any, tuple[str, int]] = {}
        for entry in doc.get("links") or []:
            if isinstance(entry, list) and len(entry) >= 5:
                self.links[entry[0]] = (str(entry[1]), entry[2])
            elif isinstance(entry, dict) and "id" in entry:
                self.links[entry["id"]] = (str(entry.get("origin_id")), entry.get("origin_slot"))

    def type(self, node_id: str) -> str | None:
        node = self.nodes.get(node_id)
        return node.get("type") if node else None

    def source(self, link_id, seen: frozenset = frozenset()) -> tuple[str, int] | None:
        """(node id, output slot) that feeds a link, through Reroutes and bypassed unknown nodes."""
        if link_id is None or link_id not in self.links or link_id in seen:
            return None
        node_id, slot = self.links[link_id]
        node = self.nodes.get(node_id)
        if node is None:
            return None
        if node.get("type") == "Reroute":
            inputs = node.get("inputs") or [{}]
            return self.source(inputs[0].get("link"), seen | {link_id})
        if self.dropped(node_id) and MODES.get(node.get("mode")) == "bypassed":
            # ComfyUI passes a bypassed node's first input of the output's type straight through.
            outputs = node.get("outputs") or []
            wanted = outputs[slot].get("type") if isinstance(slot, int) and slot < len(outputs) else None
            for inp in node.get("inputs") or []:
                if inp.get("type") == wanted and inp.get("link") is not None:
                    return self.source(inp["link"], seen | {link_id})
            return None
        return node_id, slot

    def dropped(self, node_id: str) -> bool:
        """Nodes that do not become nodes of ours: notes, reroutes, primitives, and unknown node types
        that ComfyUI would not run either (muted or bypassed)."""
        node = self.nodes[node_id]
        node_type = node.get("type")
        if node_type in NOTES or node_type in ("Reroute", "PrimitiveNode"):
            return True
        return node_type not in registry() and node.get("mode") in MODES


def _from_ui(doc: dict) -> dict:
    graph = _Graph(doc)
    nodes = {}
    for node_id, node in graph.nodes.items():
        if graph.dropped(node_id):
            continue
        nodes[node_id] = _ui_node(graph, node)
    return _workflow(nodes, _viewport(doc))


def _ui_node(graph: _Graph, node: dict) -> dict:
    node_type = node.get("type")
    if not isinstance(node_type, str):
        raise WorkflowFormatError(f"ComfyUI node {node.get('id')!r}: 'type' must be a string")
    spec = registry().get(node_type)
    inputs: dict[str, Any] = {}
    ui: dict[str, Any] = {}
    controls: dict[str, str] = {}

    # Widgets first; links (and primitives) into converted widgets then take their place.
    values = node.get("widgets_values")
    if isinstance(values, dict):
        inputs.update(values)
    elif isinstance(values, list) and values:
        names = _widget_names(spec, node, values)
        if names is None:
            ui["comfyui_widgets_values"] = values
        else:
            inputs.update(_positional_widgets(spec, names, values, controls))
    for inp in node.get("inputs") or []:
        name = inp.get("name")
        source = graph.source(inp.get("link"))
        if not name or source is None:
            continue
        src_id, slot = source
        src = graph.nodes[src_id]
        if src.get("type") == "PrimitiveNode":
            primitive = src.get("widgets_values") or []
            if primitive:
                inputs[name] = primitive[0]
                if len(primitive) > 1 and primitive[1] in CONTROL_VALUES:
                    controls[name] = primitive[1]
            continue
        outputs = src.get("outputs") or []
        fallback = outputs[slot].get("name") if isinstance(slot, int) and slot < len(outputs) else None
        inputs[name] = link(src_id, _output_name(src.get("type", ""), slot, fallback))

    if spec is not None:
        inputs = {k: v for k, v in inputs.items() if not (k in EDITOR_ONLY_INPUTS and spec.input(k) is None)}
    out: dict[str, Any] = {"type": node_type, "inputs": inputs}
    if node.get("mode") in MODES:
        out["mode"] = MODES[node["mode"]]
    if isinstance(node.get("title"), str) and node["title"] != node_type:
        out["title"] = node["title"]
    position, size = _pair(node.get("pos")), _pair(node.get("size"))
    if position:
        ui["position"] = position
    if size:
        ui["size"] = size
    if controls:
        ui["control_after_generate"] = controls
    if ui:
        out["ui"] = ui
    return out


def _widget_names(spec, node: dict, values: list) -> list[tuple[str, bool]] | None:
    """(widget name, followed by a control value) in ComfyUI's widget order, or None if unknown.

    Our node declarations list their widget inputs in ComfyUI's order. For a node type we do not
    implement, newer ComfyUI editors list every widget among the node's inputs: those names are used
    when they account for every value."""
    if spec is not None:
        return [(i.name, i.control_after_generate) for i in spec.inputs if not i.is_socket]
    names = [inp["widget"]["name"] for inp in node.get("inputs") or []
             if isinstance(inp.get("widget"), dict) and inp["widget"].get("name")]
    controls = sum(1 for v in values if v in CONTROL_VALUES)
    if names and len(names) == len(values) - controls:
        return [(name, False) for name in names]
    return None


def _positional_widgets(spec, names, values: list, controls: dict) -> dict:
    """Map `widgets_values` onto widget names, skipping the control value after a seed."""
    out, index = {}, 0
    for name, has_control in names:
        if index >= len(values):
            break
        out[name] = values[index]
        index += 1
        # ComfyUI adds the control_after_generate widget after seeds (and some editors after any
        # integer widget whose name ends in "seed"); skip it wherever it sits right after.
        if index < len(values) and values[index] in CONTROL_VALUES and (has_control or spec is None):
            controls[name] = values[index]
            index += 1
    return out


def _pair(value) -> list | None:
    """[a, b] from ComfyUI's [a, b] or {"0": a, "1": b}."""
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        return [value[0], value[1]]
    if isinstance(value, dict) and "0" in value and "1" in value:
        return [value["0"], value["1"]]
    return None


def _viewport(doc: dict) -> dict | None:
    ds = ((doc.get("extra") or {}).get("ds") or {})
    offset, scale = _pair(ds.get("offset")), ds.get("scale")
    if not offset or not isinstance(scale, (int, float)):
        return None
    # LiteGraph draws (p + offset) * scale; React Flow draws p * zoom + (x, y).
    return {"viewport": {"x": offset[0] * scale, "y": offset[1] * scale, "zoom": scale}}
