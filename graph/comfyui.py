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

Subgraphs of the UI format (`definitions.subgraphs`: each with a uuid `id`, `name`, `inputs`,
`outputs`, `nodes` and object `links`, where origin -10 is the subgraph's input node and target
-20 its output node; an instance is a node whose `type` is that uuid) become our subgraph
definitions, keyed by the uuid, and nodes of type "Subgraph" (graph/subgraphs.py).
"""
from __future__ import annotations

from typing import Any

from latentgraph.graph.workflow import FORMAT, VERSION, WorkflowFormatError, link
from latentgraph.nodes import registry

CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
NOTES = ("Note", "MarkdownNote")
MODES = {2: "muted", 4: "bypassed"}  # ComfyUI: 0 always, 1 on event (runs), 2 never, 4 bypass
SUBGRAPH_INPUT_NODE, SUBGRAPH_OUTPUT_NODE = "-10", "-20"  # a subgraph definition's own boundary nodes
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
MAX_DEFINITIONS = 10_000
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
    """A ComfyUI editor document (or one subgraph definition in it): nodes by id, links by id,
    resolving reroutes and primitives. `definitions`: the document's subgraph definitions by uuid."""

    def __init__(self, doc: dict, definitions: dict[str, dict] | None = None):
        self.definitions = definitions or {}
        self.inputs: list[dict] = []  # a definition's own inputs (its input node's slots)
        self.defaults: dict[str, Any] = {}  # subgraph input -> the value of the first widget it feeds
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
            return (node_id, slot) if node_id == SUBGRAPH_INPUT_NODE and self.inputs else None
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
        return node_type not in registry() and node_type not in self.definitions and node.get("mode") in MODES

    def input_name(self, slot) -> str | None:
        """The name of the subgraph input at `slot` of the definition's input node."""
        ok = isinstance(slot, int) and 0 <= slot < len(self.inputs)
        return self.inputs[slot].get("name") if ok else None


def _from_ui(doc: dict) -> dict:
    definitions = _definitions(doc)
    graph = _Graph(doc, definitions)
    out = _workflow(_ui_nodes(graph), _viewport(doc))
    if definitions:
        out["subgraphs"] = {uid: _definition(raw, definitions) for uid, raw in definitions.items()}
    return out


def _ui_nodes(graph: _Graph) -> dict:
    return {node_id: _ui_node(graph, node) for node_id, node in graph.nodes.items() if not graph.dropped(node_id)}


def _definitions(doc: dict) -> dict[str, dict]:
    """The subgraph definitions by uuid: `definitions.subgraphs`, and any a definition carries in its own."""
    found: dict[str, dict] = {}
    pending = [doc]
    while pending:
        holder = pending.pop()
        listed = (holder.get("definitions") or {}).get("subgraphs") if isinstance(holder, dict) else None
        for raw in listed if isinstance(listed, list) else []:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"] not in found:
                if len(found) >= MAX_DEFINITIONS:
                    raise WorkflowFormatError(f"ComfyUI workflow: more than {MAX_DEFINITIONS} subgraph definitions")
                found[raw["id"]] = raw
                pending.append(raw)
    return found


def _definition(raw: dict, definitions: dict[str, dict]) -> dict:
    """One ComfyUI subgraph definition as ours."""
    graph = _Graph(raw, definitions)
    graph.inputs = [i for i in raw.get("inputs") or [] if isinstance(i, dict)]
    nodes = _ui_nodes(graph)
    inputs = []
    for item in graph.inputs:
        declared = {"name": item.get("name"), "type": item.get("type")}
        if item.get("name") in graph.defaults:
            declared["default"] = graph.defaults[item["name"]]
        if isinstance(item.get("label"), str) and item["label"] != item.get("name"):
            declared["label"] = item["label"]
        inputs.append(declared)
    outputs = []
    for index, item in enumerate(o for o in raw.get("outputs") or [] if isinstance(o, dict)):
        source = graph.source(_output_link(raw, item, index))
        if source is None:
            continue  # not connected inside: ComfyUI gives nothing there either
        src_id, slot = source
        if src_id == SUBGRAPH_INPUT_NODE:
            origin = {"subgraph_input": graph.input_name(slot)}
        else:
            origin = link(src_id, _source_output(graph, src_id, slot))
        outputs.append({"name": item.get("name"), "type": item.get("type"), "from": origin})
    out = {"name": raw.get("name") or raw["id"], "inputs": inputs, "outputs": outputs, "nodes": nodes}
    if isinstance(raw.get("description"), str):
        out["description"] = raw["description"]
    return out


def _output_link(raw: dict, item: dict, index: int):
    """The link that feeds a definition's output `index` (its `linkIds`, else the link to the output node)."""
    if item.get("linkIds"):
        return item["linkIds"][0]
    for entry in raw.get("links") or []:
        if (isinstance(entry, dict) and str(entry.get("target_id")) == SUBGRAPH_OUTPUT_NODE
                and entry.get("target_slot") == index):
            return entry.get("id")
    return None


def _source_output(graph: _Graph, src_id: str, slot) -> str:
    """Our name of output `slot` of node `src_id` (a subgraph instance's: its definition's output name)."""
    src = graph.nodes[src_id]
    definition = graph.definitions.get(src.get("type"))
    if definition is not None:
        outputs = [o for o in definition.get("outputs") or [] if isinstance(o, dict)]
        if isinstance(slot, int) and 0 <= slot < len(outputs) and isinstance(outputs[slot].get("name"), str):
            return outputs[slot]["name"]
    outputs = src.get("outputs") or []
    fallback = outputs[slot].get("name") if isinstance(slot, int) and 0 <= slot < len(outputs) else None
    return _output_name(src.get("type", ""), slot, fallback)


def _ui_node(graph: _Graph, node: dict) -> dict:
    node_type = node.get("type")
    if not isinstance(node_type, str):
        raise WorkflowFormatError(f"ComfyUI node {node.get('id')!r}: 'type' must be a string")
    spec = registry().get(node_type)
    definition = graph.definitions.get(node_type)
    inputs: dict[str, Any] = {}
    ui: dict[str, Any] = {}
    controls: dict[str, str] = {}

    # Widgets first; links (and primitives) into converted widgets then take their place.
    values = node.get("widgets_values")
    if isinstance(values, dict):
        inputs.update(values)
    elif isinstance(values, list) and values:
        names = _instance_widgets(node, definition) if definition is not None else _widget_names(spec, node, values)
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
        if src_id == SUBGRAPH_INPUT_NODE:
            if name in inputs and not isinstance(inputs[name], dict):
                graph.defaults.setdefault(graph.input_name(slot), inputs[name])
            inputs[name] = {"subgraph_input": graph.input_name(slot)}
            continue
        src = graph.nodes[src_id]
        if src.get("type") == "PrimitiveNode":
            primitive = src.get("widgets_values") or []
            if primitive:
                inputs[name] = primitive[0]
                if len(primitive) > 1 and primitive[1] in CONTROL_VALUES:
                    controls[name] = primitive[1]
            continue
        inputs[name] = link(src_id, _source_output(graph, src_id, slot))

    if spec is not None:
        inputs = {k: v for k, v in inputs.items() if not (k in EDITOR_ONLY_INPUTS and spec.input(k) is None)}
    out: dict[str, Any] = {"type": node_type, "inputs": inputs}
    if definition is not None:
        out = {"type": "Subgraph", "subgraph": node_type, "inputs": inputs}
    if node.get("mode") in MODES:
        out["mode"] = MODES[node["mode"]]
    title = node.get("title")
    if isinstance(title, str) and title not in (node_type, (definition or {}).get("name")):
        out["title"] = title
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


def _instance_widgets(node: dict, definition: dict) -> list[tuple[str, bool]]:
    """The widgets of a subgraph instance, in order: its inputs marked as widgets, else the
    definition's inputs of widget types. A seed-like INT may be followed by its control value."""
    marked = [inp["name"] for inp in node.get("inputs") or []
              if isinstance(inp, dict) and isinstance(inp.get("widget"), dict) and isinstance(inp.get("name"), str)]
    if not marked:
        marked = [i["name"] for i in definition.get("inputs") or []
                  if isinstance(i, dict) and i.get("type") in WIDGET_TYPES and isinstance(i.get("name"), str)]
    types = {i.get("name"): i.get("type") for i in definition.get("inputs") or [] if isinstance(i, dict)}
    return [(name, types.get(name) == "INT") for name in marked]


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
