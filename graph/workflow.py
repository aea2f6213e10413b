"""The workflow file format: loading (with format detection and upgrades) and building in code.

Our format (see docs/protocol.md and workflow.schema.json):
    {"format": "latentgraph", "version": 3,
     "nodes": {id: {"type": T, "inputs": {name: constant | {"node": id, "output": name}}, ...}},
     "subgraphs": {id: definition}}   (optional; graph/subgraphs.py)
ComfyUI's API and UI formats are recognised and converted by `latentgraph.graph.comfyui`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FORMAT = "latentgraph"
VERSION = 3


class WorkflowFormatError(ValueError):
    """The document is not a workflow in any format we read."""


def is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"node", "output"}


def link(node_id: str, output: str) -> dict:
    return {"node": str(node_id), "output": output}


def detect_format(doc: Any) -> str:
    """'latentgraph', 'comfyui-api', 'comfyui-ui' or raise WorkflowFormatError."""
    if not isinstance(doc, dict):
        raise WorkflowFormatError("a workflow must be a JSON object")
    if doc.get("format") == FORMAT:
        return FORMAT
    if isinstance(doc.get("nodes"), list) and "links" in doc:
        return "comfyui-ui"
    if doc and all(isinstance(v, dict) and "class_type" in v for v in doc.values()):
        return "comfyui-api"
    raise WorkflowFormatError(
        "not a workflow: expected our format ({\"format\": \"latentgraph\", ...}), "
        "a ComfyUI API workflow ({id: {\"class_type\", \"inputs\"}}) or a ComfyUI UI workflow "
        "({\"nodes\": [...], \"links\": [...]})")


def read_document(source: Any) -> Any:
    """A dict, a JSON string, or a path to a .json file or a PNG with an embedded workflow."""
    if isinstance(source, (dict, list)):
        return copy.deepcopy(source)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        if path.suffix.lower() == ".png":
            from latentgraph.graph.png_metadata import workflow_from_png
            return workflow_from_png(path)
        text = path.read_text(encoding="utf-8")
    else:
        text = source
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(f"not valid JSON: {exc}") from None


def load_workflow(source: Any) -> dict:
    """Read a workflow in any accepted format and return it in our current format."""
    doc = read_document(source)
    kind = detect_format(doc)
    if kind != FORMAT:
        from latentgraph.graph import comfyui  # ComfyUI import lives in its own module
        return comfyui.convert(doc, kind)
    return upgrade(doc)


def upgrade(doc: dict) -> dict:
    """Bring a document of an older version of our format up to the current one."""
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise WorkflowFormatError(f"'version' must be a positive integer, got {version!r}")
    if version > VERSION:
        raise WorkflowFormatError(
            f"this workflow is version {version}; this latentgraph reads versions up to {VERSION}: upgrade latentgraph")
    while version < VERSION:
        doc = _UPGRADES[version](doc)
        version = doc["version"]
    return doc


def _upgrade_v1(doc: dict) -> dict:
    """Version 1 linked outputs by position ([node_id, output_index]); version 2 names them."""
    from latentgraph.nodes import registry

    doc = copy.deepcopy(doc)
    nodes = doc.get("nodes") if isinstance(doc.get("nodes"), dict) else {}
    for node in nodes.values():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for name, value in (inputs or {}).items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                source = nodes.get(str(value[0]))
                spec = registry().get(source.get("type")) if isinstance(source, dict) else None
                if spec is not None and 0 <= value[1] < len(spec.outputs):
                    inputs[name] = link(value[0], spec.outputs[value[1]].name)
                else:  # leave a link that validation will report precisely
                    inputs[name] = link(value[0], f"#{value[1]}")
    doc["version"] = 2
    return doc


def _upgrade_v2(doc: dict) -> dict:
    """Version 3 adds subgraphs (`subgraphs` and nodes of type "Subgraph"); a version 2 graph is
    a version 3 graph without them."""
    return {**doc, "version": 3}


_UPGRADES = {1: _upgrade_v1, 2: _upgrade_v2}


class NodeRef:
    """A node added to a `Workflow` (or a subgraph definition) in code; its attributes are its
    outputs (`ckpt.MODEL`)."""

    def __init__(self, workflow: Workflow | SubgraphDefinition, node_id: str):
        self._workflow, self.id = workflow, node_id

    def __getattr__(self, output: str) -> dict:
        if output.startswith("_"):
            raise AttributeError(output)
        return link(self.id, output)

    def __getitem__(self, output: str) -> dict:
        return link(self.id, output)

    def set(self, **inputs) -> NodeRef:
        self._workflow.doc["nodes"][self.id]["inputs"].update(inputs)
        return self


class _Nodes:
    """What workflows and subgraph definitions built in code share: adding and finding nodes."""

    doc: dict

    def add(self, node_type: str, node_id: str | None = None, **inputs) -> NodeRef:
        nodes = self.doc["nodes"]
        if node_id is None:
            node_id = str(len(nodes) + 1)
            while node_id in nodes:
                node_id = str(int(node_id) + 1)
        nodes[node_id] = {"type": node_type, "inputs": dict(inputs)}
        return NodeRef(self, node_id)

    def add_subgraph(self, subgraph_id: str, node_id: str | None = None, **inputs) -> NodeRef:
        """A Subgraph node using the definition `subgraph_id`; its inputs by the definition's names."""
        ref = self.add("Subgraph", node_id, **inputs)
        self.doc["nodes"][ref.id]["subgraph"] = subgraph_id
        return ref

    def node(self, node_id: str) -> NodeRef:
        if node_id not in self.doc["nodes"]:
            raise KeyError(f"no node {node_id!r} in this workflow")
        return NodeRef(self, node_id)


_UNSET = object()


class SubgraphDefinition(_Nodes):
    """A subgraph definition being built (see `Workflow.define_subgraph`); `doc` is the definition."""

    def __init__(self, doc: dict):
        self.doc = doc

    def input(self, name: str, type: str | None = None, default: Any = _UNSET) -> dict:
        """Stands for the Subgraph node's input `name` inside the definition; declared (with its type,
        and `default=` if given) the first time."""
        if not any(item["name"] == name for item in self.doc["inputs"]):
            if type is None:
                raise ValueError(f"subgraph input {name!r} is new: give its type")
            item = {"name": name, "type": type}
            if default is not _UNSET:
                item["default"] = default
            self.doc["inputs"].append(item)
        return {"subgraph_input": name}

    def output(self, name: str, source: dict, type: str | None = None) -> None:
        """Declare an output of the subgraph, provided by `source` (an inner node's output or an input);
        its type is the source's, unless given."""
        if type is None:
            type = self._type_of(source)
        self.doc["outputs"].append({"name": name, "type": type, "from": dict(source)})

    def _type_of(self, source: dict) -> str:
        from latentgraph.nodes import registry

        if "subgraph_input" in source:
            return next(i["type"] for i in self.doc["inputs"] if i["name"] == source["subgraph_input"])
        spec = registry().get(self.doc["nodes"].get(source.get("node"), {}).get("type"))
        index = spec.output_index(source["output"]) if spec else None
        if index is None:
            raise ValueError(f"cannot tell the type of {source}: give type=")
        return spec.outputs[index].type


class Workflow(_Nodes):
    """Build a workflow in Python:

        wf = Workflow()
        ckpt = wf.add("CheckpointLoaderSimple", ckpt_name="tiny-shapes")
        pos = wf.add("CLIPTextEncode", text="a red circle", clip=ckpt.CLIP)

    Subgraphs:

        sub = wf.define_subgraph("upscale", name="Upscale and sharpen")
        scaled = sub.add("ImageScaleBy", image=sub.input("image", "IMAGE"), upscale_method="bicubic",
                         scale_by=sub.input("scale_by", "FLOAT", default=2.0))
        sub.output("IMAGE", sub.add("ImageSharpen", image=scaled.IMAGE).IMAGE)
        big = wf.add_subgraph("upscale", image=decode.IMAGE, scale_by=1.5)   # big.IMAGE
    """

    def __init__(self, doc: dict | None = None):
        self.doc = load_workflow(doc) if doc is not None else {"format": FORMAT, "version": VERSION, "nodes": {}}

    def define_subgraph(self, subgraph_id: str, name: str | None = None, description: str | None = None,
                        definition: dict | None = None) -> SubgraphDefinition:
        """Add a subgraph definition (an empty one to build, or `definition` as it is, e.g. from the
        components library)."""
        if definition is None:
            definition = {"name": name or subgraph_id, "inputs": [], "outputs": [], "nodes": {}}
            if description:
                definition["description"] = description
        self.doc.setdefault("subgraphs", {})[subgraph_id] = definition
        return SubgraphDefinition(definition)

    def to_json(self) -> dict:
        return copy.deepcopy(self.doc)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.doc, indent=2) + "\n", encoding="utf-8")
