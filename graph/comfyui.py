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

import math
from typing import Any

from latentgraph.graph.errors import shown
from latentgraph.graph.workflow import FORMAT, VERSION, WorkflowFormatError, is_positional_link, link
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
    """A ComfyUI editor document (or one subgraph definition in it): nodes by id, links by id,
    resolving reroutes and primitives. `definitions`: the document's subgraph definitions by uuid.
    The constructor checks the shape of every node and link the conversion reads."""

    def __init__(self, doc: dict, definitions: dict[str, dict] | None = None):
        self.definitions = definitions or {}
        self.inputs: list[dict] = []  # a definition's own inputs (its input node's slots)
        self.defaults: dict[str, Any] = {}  # subgraph input -> the value of the first widget it feeds
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
                return (node_id, slot) if node_id == SUBGRAPH_INPUT_NODE and self.inputs else None
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
        return node_type not in registry() and node_type not in self.definitions and _mode(node) is not None

    def input_name(self, slot) -> str | None:
        """The name of the subgraph input at `slot` of the definition's input node."""
        ok = isinstance(slot, int) and 0 <= slot < len(self.inputs)
        return self.inputs[slot].get("name") if ok else None


def _mode(node: dict) -> str | None:
    mode = node.get("mode")
    return MODES.get(mode) if isinstance(mode, int) and not isinstance(mode, bool) else None


def _from_ui(doc: dict) -> dict:
    definitions = _definitions(doc)
    graph = _Graph(doc, definitions)
    out = _workflow(_ui_nodes(graph), _viewport(doc))
    if definitions:
        out["subgraphs"] = {uid: _definition(raw, definitions) for uid, raw in definitions.items()}
    return out


def _ui_nodes(graph: _Graph) -> dict:
    return {node_id: _ui_node(graph, node_id, node) for node_id, node in graph.nodes.items()
            if not graph.dropped(node_id)}


def _definitions(doc: dict) -> dict[str, dict]:
    """The subgraph definitions by uuid: `definitions.subgraphs`, and any a definition carries in its own."""
    found: dict[str, dict] = {}
    pending = [doc]
    while pending:
        holder = pending.pop()
        holding = holder.get("definitions") if isinstance(holder, dict) else None
        listed = holding.get("subgraphs") if isinstance(holding, dict) else None
        for raw in listed if isinstance(listed, list) else []:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"] not in found:
                if len(found) >= MAX_DEFINITIONS:
                    raise WorkflowFormatError(f"ComfyUI workflow: more than {MAX_DEFINITIONS} subgraph definitions")
                _check_definition(raw)
                found[raw["id"]] = raw
                pending.append(raw)
    return found


def _check_definition(raw: dict) -> None:
    """The shape of a definition's own inputs and outputs, which the conversion reads."""
    where = f"ComfyUI subgraph {shown(raw['id'])}"
    for key in ("inputs", "outputs"):
        items = raw.get(key)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise WorkflowFormatError(f"{where}: '{key}' must be a list of objects")
        for item in items:
            if not isinstance(item.get("name"), str) or not isinstance(item.get("type", ""), str):
                raise WorkflowFormatError(f"{where}: each of its {key} needs a 'name' and a 'type' string")
            link_ids = item.get("linkIds")
            if link_ids is not None and (not isinstance(link_ids, list) or not all(map(_is_id, link_ids))):
                raise WorkflowFormatError(f"{where}: {key[:-1]} {item['name']!r}: 'linkIds' must be a list of link ids")


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
    name = raw.get("name") if isinstance(raw.get("name"), str) and raw.get("name") else raw["id"]
    out = {"name": name, "inputs": inputs, "outputs": outputs, "nodes": nodes}
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


def _ui_node(graph: _Graph, node_id: str, node: dict) -> dict:
    node_type = node["type"]
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
        if src_id == SUBGRAPH_INPUT_NODE:
            if name in inputs and not isinstance(inputs[name], dict):
                graph.defaults.setdefault(graph.input_name(slot), inputs[name])
            inputs[name] = {"subgraph_input": graph.input_name(slot)}
            continue
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
        inputs[name] = link(src_id, _source_output(graph, src_id, slot))

    if spec is not None:
        inputs = {k: v for k, v in inputs.items() if not (k in EDITOR_ONLY_INPUTS and spec.input(k) is None)}
    out: dict[str, Any] = {"type": node_type, "inputs": inputs}
    if definition is not None:
        out = {"type": "Subgraph", "subgraph": node_type, "inputs": inputs}
    if _mode(node) is not None:
        out["mode"] = _mode(node)
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
    # An int of any size is finite (math.isfinite would overflow converting a 400-digit one to float).
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value)


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
