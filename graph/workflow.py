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

from latentgraph.graph import limits as doc_limits
from latentgraph.graph.errors import WorkflowFormatError, shown
from latentgraph.graph.limits import Limits

__all__ = ["WorkflowFormatError", "Workflow", "load_workflow", "link", "is_link"]

FORMAT = "latentgraph"
VERSION = 2


def is_link(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"node", "output"}


def is_positional_link(value: Any) -> bool:
    """[node id, output index]: version 1's links, and ComfyUI's API format's."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


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


def read_document(source: Any, limits: Limits = doc_limits.DEFAULT) -> Any:
    """A dict (checked, not copied), JSON text or bytes, or a path to a .json file or a PNG with an
    embedded workflow. Raises WorkflowFormatError, or OSError for a file that cannot be read."""
    if isinstance(source, (dict, list)):
        return doc_limits.check(source, limits)
    if isinstance(source, (bytes, bytearray)):
        return doc_limits.parse(source, limits)
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        try:
            if path.suffix.lower() == ".png":
                from latentgraph.graph.png_metadata import workflow_from_png
                return workflow_from_png(path, limits)
            with path.open("rb") as file:  # at most the limit and a byte, even from a device or a pipe
                data = file.read(limits.max_bytes + 1)
            if len(data) > limits.max_bytes:
                raise WorkflowFormatError(f"{path.name} is over the limit of {doc_limits.size_text(limits.max_bytes)}")
            return doc_limits.parse(data, limits)
        except ValueError as exc:  # a NUL in the name, and format errors
            raise WorkflowFormatError(str(exc)) from None
    if isinstance(source, str):
        return doc_limits.parse(source, limits)
    raise WorkflowFormatError(f"a workflow is a dict, JSON text or a path, not a {type(source).__name__}")


def load_workflow(source: Any, limits: Limits | None = None) -> dict:
    """Read a workflow in any accepted format and return it in our current format.

    A dict already in our current format is returned as it is, not copied: copy it before changing
    it. Raises WorkflowFormatError (not a workflow, or beyond `limits`) or OSError (unreadable file)."""
    limits = limits or doc_limits.DEFAULT
    doc = read_document(source, limits)
    kind = detect_format(doc)
    doc_limits.check_node_count(doc_limits.node_count(doc, kind), limits)
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
    for node_id in doc["nodes"] if isinstance(doc.get("nodes"), dict) else ():
        if not isinstance(node_id, str) or not node_id:
            raise WorkflowFormatError(f"node ids must be non-empty strings, got {shown(node_id)}")
    while version < VERSION:
        doc = _UPGRADES[version](doc)
        version = doc["version"]
    return doc


def _upgrade_v1(doc: dict) -> dict:
    """Version 1 linked outputs by position ([node_id, output_index]); version 2 names them.
    Builds new node and input objects (the given document is left as it was); anything malformed
    is carried over for validation to name."""
    from latentgraph.nodes import registry

    specs, nodes = registry(), doc.get("nodes")
    if not isinstance(nodes, dict):
        return {**doc, "version": 2}
    upgraded = {}
    for node_id, node in nodes.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            upgraded[node_id] = node
            continue
        new_inputs = {}
        for name, value in inputs.items():
            if is_positional_link(value):
                source = nodes.get(str(value[0]))
                source_type = source.get("type") if isinstance(source, dict) else None
                spec = specs.get(source_type) if isinstance(source_type, str) else None
                if spec is not None and 0 <= value[1] < len(spec.outputs):
                    value = link(value[0], spec.outputs[value[1]].name)
                else:  # leave a link that validation will report precisely
                    value = link(value[0], f"#{value[1]}")
            new_inputs[name] = value
        upgraded[node_id] = {**node, "inputs": new_inputs}
    return {**doc, "nodes": upgraded, "version": 2}


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

    def __init__(self, doc: Any = None):
        self.doc = copy.deepcopy(load_workflow(doc)) if doc is not None else {
            "format": FORMAT, "version": VERSION, "nodes": {}}
        if not isinstance(self.doc.get("nodes"), dict):
            raise WorkflowFormatError("'nodes' must be an object of node id -> node")

    def add(self, node_type: str, node_id: str | None = None, **inputs) -> NodeRef:
        """Add a node; raises WorkflowFormatError for a type or id that is not a non-empty string,
        or an id already taken (change a node with `.node(id).set(...)`)."""
        nodes = self.doc["nodes"]
        if not isinstance(node_type, str) or not node_type:
            raise WorkflowFormatError(f"a node type must be a non-empty string, got {shown(node_type)}")
        if node_id is None:
            number = len(nodes) + 1
            while str(number) in nodes:
                number += 1
            node_id = str(number)
        elif not isinstance(node_id, str) or not node_id:
            raise WorkflowFormatError(f"a node id must be a non-empty string, got {shown(node_id)}")
        elif node_id in nodes:
            raise WorkflowFormatError(f"node id {node_id!r} is already in this workflow")
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
