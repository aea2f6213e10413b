"""The workflow file format: loading (with format detection and upgrades) and building in code.

Our format (see docs/protocol.md and workflow.schema.json):
    {"format": "latentgraph", "version": 2,
     "nodes": {id: {"type": T, "inputs": {name: constant | {"node": id, "output": name}}, ...}}}
ComfyUI's API and UI formats are recognised and converted by `latentgraph.graph.comfyui`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

FORMAT = "latentgraph"
VERSION = 2


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


_UPGRADES = {1: _upgrade_v1}


class NodeRef:
    """A node added to a `Workflow` in code; its attributes are its outputs (`ckpt.MODEL`)."""

    def __init__(self, workflow: Workflow, node_id: str):
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


class Workflow:
    """Build a workflow in Python:

        wf = Workflow()
        ckpt = wf.add("CheckpointLoaderSimple", ckpt_name="tiny-shapes")
        pos = wf.add("CLIPTextEncode", text="a red circle", clip=ckpt.CLIP)
    """

    def __init__(self, doc: dict | None = None):
        self.doc = load_workflow(doc) if doc is not None else {"format": FORMAT, "version": VERSION, "nodes": {}}

    def add(self, node_type: str, node_id: str | None = None, **inputs) -> NodeRef:
        nodes = self.doc["nodes"]
        if node_id is None:
            node_id = str(len(nodes) + 1)
            while node_id in nodes:
                node_id = str(int(node_id) + 1)
        nodes[node_id] = {"type": node_type, "inputs": dict(inputs)}
        return NodeRef(self, node_id)

    def node(self, node_id: str) -> NodeRef:
        if node_id not in self.doc["nodes"]:
            raise KeyError(f"no node {node_id!r} in this workflow")
        return NodeRef(self, node_id)

    def to_json(self) -> dict:
        return copy.deepcopy(self.doc)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.doc, indent=2) + "\n", encoding="utf-8")
