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

import math
from typing import Any

from latentgraph.graph.errors import shown
from latentgraph.graph.workflow import FORMAT, VERSION, WorkflowFormatError, is_positional_link, link
from latentgraph.nodes import registry

CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
NOTES = ("Note", "MarkdownNote")
MODES = {2: "muted", 4: "bypassed"}  # ComfyUI: 0 always, 1 on event (runs), 2 never, 4 bypass
# Inputs that ComfyUI's API format may carry for its editor only.
EDITOR_ONLY_INPUTS = ("upload",)


def convert(doc: dict, kind: str) -> dict:
    """Our format from a ComfyUI document of `kind` ('comfyui-api' or 'comfyui-ui').
    Raises WorkflowFormatError, naming the node, for anything malformed."""
    if kind == "comfyui-api":
        return _from_api(doc)
    if kind == "comfyui-ui":
        return _from_ui(doc)
    raise WorkflowFormatError(f"not a ComfyUI workflow kind: {kind!r}")


def _fail(node_id: Any, text: str) -> WorkflowFormatError:
    return WorkflowFormatError(f"ComfyUI node {shown(node_id)}: {text}")


def _is_id(value: Any) -> bool:
    """Node and link ids are numbers (or, in some editors, non-empty strings)."""
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value != ""


def _workflow(nodes: dict, ui: dict | None = None) -> dict:
    out = {"format": FORMAT, "version": VERSION, "nodes": nodes}
    if ui:
        out["ui"] = ui
    return out


def _output_name(node_type: Any, slot: Any, fallback: Any = None) -> str:
    """Our name of a node type's output slot; '#slot' when unknown (validation then names the problem)."""
    spec = registry().get(node_type) if isinstance(node_type, str) else None
    if spec is not None and isinstance(slot, int) and 0 <= slot < len(spec.outputs):
        return spec.outputs[slot].name
    return fallback if isinstance(fallback, str) and fallback else f"#{slot}"


# --- API format --------------------------------------------------------------------------------

def _from_api(doc: dict) -> dict:
    specs = registry()
    nodes = {}
    for node_id, node in doc.items():
        if not _is_id(node_id):
            raise _fail(node_id, "node ids must be non-empty strings")
        node_type = node.get("class_type")
        if not isinstance(node_type, str):
            raise _fail(node_id, "'class_type' must be a string")
        raw_inputs = node.get("inputs") or {}
        if not isinstance(raw_inputs, dict):
            raise _fail(node_id, "'inputs' must be an object")
        meta = node.get("_meta") or {}
        if not isinstance(meta, dict):
            raise _fail(node_id, "'_meta' must be an object")
        spec = specs.get(node_type)
        inputs = {}
        for name, value in raw_inputs.items():
            if spec is not None and name in EDITOR_ONLY_INPUTS and spec.input(name) is None:
                continue
            if is_positional_link(value):
                source = doc.get(str(value[0]))
                source_type = source.get("class_type") if isinstance(source, dict) else None
                inputs[name] = link(value[0], _output_name(source_type, value[1]))
            else:
                inputs[name] = value
        out = {"type": node_type, "inputs": inputs}
        title = meta.get("title")
        if isinstance(title, str) and title != node_type:
            out["title"] = title
        if str(node_id) in nodes:
            raise _fail(node_id, "two nodes have this id")
        nodes[str(node_id)] = out
    return _workflow(nodes)


# --- UI format ---------------------------------------------------------------------------------

class _Graph:
    """A ComfyUI editor document: nodes by id, links by id, resolving reroutes and primitives.
    The constructor checks the shape of every node and link the conversion reads."""

    def __init__(self, doc: dict):
        if not isinstance(doc.get("nodes"), list):
            raise WorkflowFormatError("ComfyUI workflow: 'nodes' must be a list")
        self.nodes: dict[str, dict] = {}
        for index, node in enumerate(doc["nodes"]):
            if not isinstance(node, dict) or not _is_id(node.get("id")):
                raise WorkflowFormatError(f"ComfyUI workflow: nodes[{index}] must be an object with a number 'id'")
            node_id = str(node["id"])
            if node_id in self.nodes:
                raise _fail(node_id, "two nodes have this id")
            if not isinstance(node.get("type"), str):
                raise _fail(node_id, "'type' must be a string")
            for key in ("inputs", "outputs"):
                entries = node.get(key)
                if entries is not None and (not isinstance(entries, list)
                                            or not all(isinstance(e, dict) for e in entries)):
                    raise _fail(node_id, f"'{key}' must be a list of objects")
            for inp in node.get("inputs") or []:
                if inp.get("link") is not None and not _is_id(inp["link"]):
                    raise _fail(node_id, f"input {shown(inp.get('name'))}: 'link' must be a link id, "
                                         f"got {shown(inp['link'])}")
            self.nodes[node_id] = node
        self.links: dict[Any, tuple[str, Any]] = {}
        links = doc.get("links") or []
        if not isinstance(links, list):
            raise WorkflowFormatError("ComfyUI workflow: 'links' must be a list")
        for index, entry in enumerate(links):
            if isinstance(entry, list) and len(entry) >= 5:
                link_id, origin, slot = entry[0], entry[1], entry[2]
            elif isinstance(entry, dict) and "id" in entry:
                link_id, origin, slot = entry["id"], entry.get("origin_id"), entry.get("origin_slot")
            elif entry is None:
                continue
            else:
                raise WorkflowFormatError(f"ComfyUI workflow: links[{index}] must be [id, origin_id, origin_slot, "
                                          "target_id, target_slot, type]")
            if not _is_id(link_id) or not _is_id(origin):
                raise WorkflowFormatError(f"ComfyUI workflow: links[{index}]: its id and origin node id must be "
                                          f"numbers, got {shown(link_id)} and {shown(origin)}")
            self.links[link_id] = (str(origin), slot)

    def type(self, node_id: str) -> str | None:
        node = self.nodes.get(node_id)
        return node["type"] if node else None

    def source(self, link_id) -> tuple[str, Any] | None:
        """(node id, output slot) that feeds a link, through Reroutes and bypassed unknown nodes
        (followed in a loop, so chains of any length are fine; a loop of them feeds nothing)."""
        seen = set()
        while link_id is not None and link_id in self.links and link_id not in seen:
            seen.add(link_id)
            node_id, slot = self.links[link_id]
            node = self.nodes.get(node_id)
            if node is None:
                return None
            if node["type"] == "Reroute":
                inputs = node.get("inputs") or [{}]
                link_id = inputs[0].get("link")
                continue
            if self.dropped(node_id) and _mode(node) == "bypassed":
                # ComfyUI passes a bypassed node's first input of the output's type straight through.
                outputs = node.get("outputs") or []
                wanted = outputs[slot].get("type") if isinstance(slot, int) and 0 <= slot < len(outputs) else None
                link_id = next((inp["link"] for inp in node.get("inputs") or []
                                if inp.get("type") == wanted and inp.get("link") is not None), None)
                continue
            return node_id, slot
        return None

    def dropped(self, node_id: str) -> bool:
        """Nodes that do not become nodes of ours: notes, reroutes, primitives, and unknown node types
        that ComfyUI would not run either (muted or bypassed)."""
        node = self.nodes[node_id]
        node_type = node["type"]
        if node_type in NOTES or node_type in ("Reroute", "PrimitiveNode"):
            return True
        return node_type not in registry() and _mode(node) is not None


def _mode(node: dict) -> str | None:
    mode = node.get("mode")
    return MODES.get(mode) if isinstance(mode, int) and not isinstance(mode, bool) else None


def _from_ui(doc: dict) -> dict:
    graph = _Graph(doc)
    nodes = {}
    for node_id, node in graph.nodes.items():
        if graph.dropped(node_id):
            continue
        nodes[node_id] = _ui_node(graph, node_id, node)
    return _workflow(nodes, _viewport(doc))


def _ui_node(graph: _Graph, node_id: str, node: dict) -> dict:
    node_type = node["type"]
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
    elif values is not None and values != []:
        raise _fail(node_id, "'widgets_values' must be a list")
    for inp in node.get("inputs") or []:
        name = inp.get("name")
        if inp.get("link") is None:
            continue
        if not isinstance(name, str) or not name:
            raise _fail(node_id, f"an input linked to link {shown(inp['link'])} has no name")
        source = graph.source(inp["link"])
        if source is None:
            continue
        src_id, slot = source
        src = graph.nodes[src_id]
        if src["type"] == "PrimitiveNode":
            primitive = src.get("widgets_values") or []
            if not isinstance(primitive, list):
                raise _fail(src_id, "a PrimitiveNode's 'widgets_values' must be a list")
            if primitive:
                inputs[name] = primitive[0]
                if len(primitive) > 1 and primitive[1] in CONTROL_VALUES:
                    controls[name] = primitive[1]
            continue
        outputs = src.get("outputs") or []
        fallback = outputs[slot].get("name") if isinstance(slot, int) and 0 <= slot < len(outputs) else None
        inputs[name] = link(src_id, _output_name(src["type"], slot, fallback))

    if spec is not None:
        inputs = {k: v for k, v in inputs.items() if not (k in EDITOR_ONLY_INPUTS and spec.input(k) is None)}
    out: dict[str, Any] = {"type": node_type, "inputs": inputs}
    if _mode(node) is not None:
        out["mode"] = _mode(node)
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
    widgets = [inp.get("widget") for inp in node.get("inputs") or []]
    names = [w["name"] for w in widgets if isinstance(w, dict) and isinstance(w.get("name"), str) and w["name"]]
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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pair(value) -> list | None:
    """[a, b] from ComfyUI's [a, b] or {"0": a, "1": b}, when both are numbers (positions and
    sizes are for the editor only: anything else is left out)."""
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        pair = [value[0], value[1]]
    elif isinstance(value, dict) and "0" in value and "1" in value:
        pair = [value["0"], value["1"]]
    else:
        return None
    return pair if all(_number(v) and abs(v) < 1e9 for v in pair) else None


def _viewport(doc: dict) -> dict | None:
    extra = doc.get("extra")
    ds = extra.get("ds") if isinstance(extra, dict) else None
    if not isinstance(ds, dict):
        return None
    offset, scale = _pair(ds.get("offset")), ds.get("scale")
    if not offset or not _number(scale) or not 1e-6 < abs(scale) < 1e6:
        return None
    # LiteGraph draws (p + offset) * scale; React Flow draws p * zoom + (x, y).
    return {"viewport": {"x": offset[0] * scale, "y": offset[1] * scale, "zoom": scale}}
