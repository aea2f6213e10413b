"""`NODE.INPUT` targets: how the command line (`--set`, `--sweep`) and sweeps name a node's input.

NODE is a node id or, when no node has that id, a node title; INPUT is the input's name. Values
given as text are converted to the input's type (whole numbers, numbers, true/false); the rest
(range, choices) is validation's job (`graph.validate.check_value`).
"""
from __future__ import annotations

from typing import Any


class TargetError(ValueError):
    """A target that does not name one input of one node; `kind` says why."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def split_target(text: str) -> tuple[str, str]:
    """'Positive prompt.text' -> ('Positive prompt', 'text'); titles may contain dots, input names do not."""
    node, dot, name = str(text).rpartition(".")
    if not dot or not node or not name:
        raise TargetError("bad_format", f"{text!r}: expected NODE.INPUT (a node id or title, a dot, an input "
                                        "name), e.g. sampler.seed")
    return node, name


def find_nodes(doc: dict, node_ref: str) -> list[str]:
    """Ids of the nodes `node_ref` names: the node with that id, else every node with that title."""
    nodes = doc.get("nodes", {})
    if node_ref in nodes:
        return [node_ref]
    return [node_id for node_id, node in nodes.items() if isinstance(node, dict) and node.get("title") == node_ref]


def resolve(doc: dict, text: str):
    """(node id, its NodeSpec, the Input) that `text` names in a workflow; TargetError otherwise."""
    from latentgraph.nodes import registry

    node_ref, name = split_target(text)
    matches = find_nodes(doc, node_ref)
    if not matches:
        raise TargetError("unknown_node", f"{text!r}: the workflow has no node with id or title {node_ref!r}")
    if len(matches) > 1:
        raise TargetError("ambiguous_node", f"{text!r}: several nodes are titled {node_ref!r}; use a node id")
    node_id = matches[0]
    spec = registry().get(doc["nodes"][node_id].get("type"))
    if spec is None:
        raise TargetError("unknown_type", f"{text!r}: node {node_id!r} has an unknown type")
    inp = spec.input(name)
    if inp is None:
        known = ", ".join(i.name for i in spec.inputs if not i.is_socket)
        raise TargetError("unknown_input", f"{text!r}: {spec.name} '{node_id}' has no input {name!r} "
                                           f"(inputs that take values: {known})")
    return node_id, spec, inp


def typed(kind: str | None, raw: Any) -> Any:
    """A value given as text converted to an input's type (`kind`: INT, FLOAT, BOOLEAN; others as
    given). Raises ValueError for text that is not of that type."""
    from latentgraph.nodes.spec import BOOLEAN, FLOAT, INT

    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if kind == INT:
        return int(text)
    if kind == FLOAT:
        return float(text)
    if kind == BOOLEAN:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(raw)
        return text.lower() in ("true", "1", "yes")
    return raw
