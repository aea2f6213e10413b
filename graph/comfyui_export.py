"""Our workflows in ComfyUI's API format: `{id: {"inputs", "class_type", "_meta": {"title"}}}`, with
links as `[node_id, output_index]`.

This is the form ComfyUI clients read in the queue and the history (server/comfy_protocol.py) for
jobs that did not arrive in it. What ComfyUI's editor does before it queues is done here too:
muted nodes are left out and links through bypassed nodes go to the input they pass through.
"""
from __future__ import annotations

from latentgraph.graph.workflow import is_link
from latentgraph.nodes import registry


def to_api(doc: dict) -> dict:
    """The API-format prompt of a workflow in our format (current version)."""
    specs = registry()
    nodes = doc["nodes"]

    def source(node_id: str, output: str, seen: frozenset = frozenset()) -> list:
        node = nodes.get(node_id, {})
        spec = specs.get(node.get("type"))
        index = spec.output_index(output) if spec else None
        if spec is not None and index is not None and node.get("mode") == "bypassed" and node_id not in seen:
            wanted = spec.outputs[index].type
            for inp in spec.inputs:
                value = node.get("inputs", {}).get(inp.name)
                if inp.type == wanted and is_link(value):
                    return source(value["node"], value["output"], seen | {node_id})
        return [node_id, index if index is not None else output]

    prompt = {}
    for node_id, node in nodes.items():
        if node.get("mode", "active") != "active":
            continue
        inputs = {name: source(value["node"], value["output"]) if is_link(value) else value
                  for name, value in node.get("inputs", {}).items()}
        spec = specs.get(node["type"])
        title = node.get("title") or (spec.display_name if spec and spec.display_name else node["type"])
        prompt[node_id] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": title}}
    return prompt
