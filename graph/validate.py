"""Validation: every problem in a workflow, each naming node id, node type and input, before
anything runs. It also yields the plan the executor runs: the nodes that the outputs need, with
bypassed nodes resolved and defaults filled in. Subgraphs are expanded first (graph/subgraphs.py),
so the plan and the errors name inner nodes by their path ("5/2")."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from latentgraph.graph.errors import GraphError, describe, shown
from latentgraph.graph.gc_pause import gc_paused
from latentgraph.graph.settings import Settings
from latentgraph.graph.subgraphs import expand
from latentgraph.graph.workflow import is_link
from latentgraph.nodes import folders, registry
from latentgraph.nodes.spec import BOOLEAN, COMBO, FLOAT, INT, STRING, Input, NodeSpec

MODES = ("active", "muted", "bypassed")
INT_RANGE = (-(1 << 63), (1 << 64) - 1)  # seeds go up to 2**64 - 1
FLOAT_MAX = sys.float_info.max
CYCLE_MEMBERS_SHOWN = 10
ERRORS_SHOWN = 1000  # a document can hold more problems than anyone reads; the count of the rest is given


@dataclass
class PlannedNode:
    id: str
    spec: NodeSpec
    values: dict[str, Any] = field(default_factory=dict)  # constant inputs, defaults filled in
    links: dict[str, tuple[str, str]] = field(default_factory=dict)  # input -> (node id, output name)


@dataclass
class Plan:
    nodes: dict[str, PlannedNode]  # only the nodes that run
    graph: nx.DiGraph  # edges upstream -> downstream
    outputs: list[str]

    def order(self) -> list[str]:
        """Topological order; ties broken by node id so runs are reproducible."""
        return list(nx.lexicographical_topological_sort(self.graph, key=_natural))


def _error(kind: str, node_id, node_type, input_name, text: str) -> GraphError:
    return GraphError(kind, f"{describe(node_id, node_type, input_name)}: {text}", node_id, node_type, input_name)


class Listings(dict):
    """Folder-backed choice lists (checkpoints, input images...), each listed once per validation:
    source -> (names, set of names)."""

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def __missing__(self, source: str) -> tuple[list[str], frozenset[str]]:
        names = folders.resolve_choices(self.settings, source)
        self[source] = (names, frozenset(names))
        return self[source]


def check_value(spec: NodeSpec, node_id: str, inp: Input, value: Any, settings: Settings,
                listings: Listings | None = None) -> list[GraphError]:
    """Errors for one constant input value (type, range, choices). Pass one `listings` for every
    value of a workflow, so that each folder is listed once."""
    err = lambda kind, text: [_error(kind, node_id, spec.name, inp.name, text)]  # noqa: E731
    if inp.is_socket:
        return err("bad_value", f"expects a link from a {inp.type} output, got the constant {shown(value)}")
    if inp.type == INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return err("bad_value", f"expects a whole number, got {shown(value)}")
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            return err("out_of_range", f"{shown(value)} is too {'large' if value > 0 else 'small'} for a whole number")
    elif inp.type == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return err("bad_value", f"expects a number, got {shown(value)}")
        if not -FLOAT_MAX <= value <= FLOAT_MAX:  # exact for integers of any size; false for NaN
            return err("bad_value", f"expects a finite number, got {shown(value)}")
    elif inp.type == STRING:
        if not isinstance(value, str):
            return err("bad_value", f"expects text, got {shown(value)}")
    elif inp.type == BOOLEAN:
        if not isinstance(value, bool):
            return err("bad_value", f"expects true or false, got {shown(value)}")
    elif inp.type == COMBO:
        if inp.choices_from:
            choices, allowed = (listings if listings is not None else Listings(settings))[inp.choices_from]
        else:
            choices = list(inp.choices or ())
            allowed = choices
        if not isinstance(value, str) or value not in allowed:
            if inp.refused_choices and isinstance(value, str) and value in inp.refused_choices:
                return err("unsupported", f"{shown(value)} is not supported: {inp.refused_choices[value]}")
            if inp.choices_from == "checkpoints":
                searched = ", ".join(str(p) for p in folders.checkpoint_roots(settings))
                return err("not_in_choices", f"checkpoint {shown(value)} not found (searched {searched}); "
                                             f"{folders.available(choices)}")
            if inp.file_folder in folders.SINGLE_MODEL_FOLDERS:
                return err("not_in_choices", folders.not_found(
                    settings, inp.file_folder, value[:200] if isinstance(value, str) else shown(value)))
            if inp.choices_from == "input_images":
                return err("not_in_choices", f"image {shown(value)} not found in the input folder {settings.input}")
            listed = ", ".join(map(str, choices[:20])) + (", ..." if len(choices) > 20 else "")
            return err("not_in_choices", f"{shown(value)} is not one of: {listed}")
    if inp.type in (INT, FLOAT):
        if inp.min is not None and value < inp.min:
            return err("out_of_range", f"{shown(value)} is below the minimum {inp.min}")
        if inp.max is not None and value > inp.max:
            return err("out_of_range", f"{shown(value)} is above the maximum {inp.max}")
    return []


def coerce(inp: Input, value: Any) -> Any:
    """The value a node function receives for a checked constant."""
    if inp.type == INT:
        return int(value)
    if inp.type == FLOAT:
        return float(value)
    return value


def validate(doc: Any, settings: Settings) -> tuple[Plan | None, list[GraphError]]:
    """Check a workflow (our format, current version). Returns the plan and every error found.

    Linear in the workflow's size: each folder is listed once, bypassed nodes are resolved once,
    and cycles are found as strongly connected components (one error per component)."""
    with gc_paused():
        expansion = expand(doc)
        plan, errors = _validate_flat(expansion.doc, settings)
        errors = expansion.report(errors)
    return (None if errors else plan), errors


def _validate_flat(doc: Any, settings: Settings) -> tuple[Plan | None, list[GraphError]]:
    specs = registry()
    errors: list[GraphError] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), dict):
        return None, [GraphError("bad_format", "workflow: 'nodes' must be an object of node id -> node")]
    nodes = doc["nodes"]
    if len(nodes) > settings.limits.max_nodes:
        return None, [GraphError("too_many_nodes", f"workflow: {len(nodes):,} nodes, over the limit of "
                                                   f"{settings.limits.max_nodes:,}")]
    listings = Listings(settings)

    # 1. Each node's own shape and type.
    raw: dict[str, dict] = {}
    for node_id, node in nodes.items():
        if not isinstance(node_id, str) or not node_id:
            errors.append(GraphError("bad_format", "workflow: node ids must be non-empty strings, "
                                                   f"got {shown(node_id)}"))
            continue
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            errors.append(_error("bad_format", node_id, None, None, "a node must be an object with a 'type' string"))
            continue
        node_type = node["type"]
        inputs = node.get("inputs", {})
        mode = node.get("mode", "active")
        if not isinstance(inputs, dict):
            errors.append(_error("bad_format", node_id, node_type, None, "'inputs' must be an object"))
            continue
        if mode not in MODES:
            errors.append(_error("bad_format", node_id, node_type, None, f"'mode' must be one of {', '.join(MODES)}"))
            continue
        if node_type not in specs:
            if mode == "muted":
                continue  # never runs, so its type does not matter (as in ComfyUI)
            errors.append(_error("unknown_type", node_id, node_type, None, f"unknown node type {shown(node_type)}"))
            continue
        raw[node_id] = {"spec": specs[node_type], "inputs": inputs, "mode": mode}

    # 2. Links: to existing nodes and outputs, of the right type; bypassed nodes resolved.
    resolved: dict[tuple[str, str], tuple[str, str] | str | None] = {}

    def resolve(node_id: str, output: str) -> tuple[str, str] | str | None:
        """(node, output) that really provides a value, an error text, or None when the linked
        node is itself invalid (its own error says why). Chains of bypassed nodes are followed in a
        loop, and every step's answer is kept, so each link is resolved once."""
        chain: list[tuple[str, str]] = []
        while True:
            key = (node_id, output)
            if key in resolved:
                result = resolved[key]
                break
            if key in chain:
                result = "is linked through a loop of bypassed nodes"
                break
            chain.append(key)
            source = raw.get(node_id)
            if source is None:
                # A node that exists but is malformed or of an unknown type is reported on its own.
                result = None if node_id in nodes else f"is linked to node {shown(node_id)}, which does not exist"
                break
            spec = source["spec"]
            index = spec.output_index(output)
            if index is None:
                names = ", ".join(o.name for o in spec.outputs) or "none"
                result = f"is linked to output {shown(output)} of {spec.name} '{node_id}', which has outputs: {names}"
                break
            if source["mode"] == "muted":
                result = f"is linked to {spec.name} '{node_id}', which is muted"
                break
            if source["mode"] != "bypassed":
                result = node_id, output
                break
            wanted = spec.outputs[index].type
            through = next((inp for inp in spec.inputs
                            if inp.type == wanted and is_link(source["inputs"].get(inp.name))), None)
            if through is None:
                result = f"is linked to bypassed {spec.name} '{node_id}', which has no {wanted} input to pass through"
                break
            target = link_target(source["inputs"][through.name])
            if target is None:
                result = (f"is linked through bypassed {spec.name} '{node_id}', whose input '{through.name}' "
                          "is not a valid link")
                break
            node_id, output = target
        for key in chain:
            resolved[key] = result
        return result

    planned: dict[str, PlannedNode] = {}
    link_errors: dict[str, list[GraphError]] = {}
    for node_id, node in raw.items():
        if node["mode"] != "active":
            continue
        spec = node["spec"]
        plan_node = PlannedNode(node_id, spec)
        problems: list[GraphError] = []
        for name, value in node["inputs"].items():
            inp = spec.input(name)
            if inp is None:
                known = ", ".join(i.name for i in spec.inputs)
                problems.append(_error("unknown_input", node_id, spec.name, name,
                                       f"{spec.name} has no input {shown(name)} (inputs: {known})"))
                continue
            if not is_link(value):
                if isinstance(value, (list, dict, tuple)):
                    problems.append(_error("bad_format", node_id, spec.name, name,
                                           'a link must be {"node": id, "output": name}'))
                    continue
                value_errors = check_value(spec, node_id, inp, value, settings, listings)
                problems += value_errors
                plan_node.values[name] = value if value_errors else coerce(inp, value)
                continue
            target = link_target(value)
            if target is None:
                problems.append(_error("bad_format", node_id, spec.name, name,
                                       'a link must be {"node": id, "output": name}, with a node id and an '
                                       'output name'))
                continue
            target = resolve(*target)
            if target is None:
                continue
            if isinstance(target, str):
                kind = "missing_output" if "which has outputs" in target else "missing_node"
                problems.append(_error(kind, node_id, spec.name, name, target))
                continue
            source_spec = raw[target[0]]["spec"]
            out_type = source_spec.outputs[source_spec.output_index(target[1])].type
            if out_type != inp.type:
                problems.append(_error("type_mismatch", node_id, spec.name, name,
                                       f"expects {inp.type}, but is linked to a {out_type} output "
                                       f"({source_spec.name} '{target[0]}'.{target[1]})"))
                continue
            plan_node.links[name] = target
        for inp in spec.inputs:
            if inp.name in node["inputs"]:
                continue
            if inp.is_socket or inp.default is None:
                if inp.required:
                    what = f"needs a link from a {inp.type} output" if inp.is_socket else "needs a value"
                    problems.append(_error("missing_input", node_id, spec.name, inp.name, f"is missing: it {what}"))
            else:
                plan_node.values[inp.name] = inp.default
        if spec.check and not problems and _values_known(spec, node["inputs"], plan_node):
            problems += _checked(spec, node_id, plan_node)
        planned[node_id] = plan_node
        link_errors[node_id] = problems

    # 3. The graph: cycles, outputs, and the part of it that runs.
    graph = nx.DiGraph()
    graph.add_nodes_from(planned)
    graph.add_edges_from((upstream, node_id) for node_id, plan_node in planned.items()
                         for upstream, _ in plan_node.links.values())
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1 or graph.has_edge(*component, *component):
            errors.append(_cycle_error(sorted(component, key=_natural), planned))
    outputs = sorted((n for n, p in planned.items() if p.spec.output_node), key=_natural)
    if not outputs:
        errors.append(GraphError("no_output", "workflow: there is no output node (SaveImage or PreviewImage), "
                                              "so nothing would run"))
    needed = _upstream_of(graph, outputs)
    for node_id in sorted(needed, key=_natural):
        errors += link_errors[node_id]
    if errors:
        if len(errors) > ERRORS_SHOWN:
            errors[ERRORS_SHOWN:] = [GraphError("too_many_errors", f"workflow: {len(errors) - ERRORS_SHOWN:,} more "
                                                                   "problems not listed")]
        return None, errors
    run_graph = graph if len(needed) == len(planned) else graph.subgraph(needed).copy()
    return Plan({n: planned[n] for n in needed}, run_graph, outputs), []


def _values_known(spec: NodeSpec, given: dict, plan_node: PlannedNode) -> bool:
    """Whether every value input the workflow gives this node is a known constant (not a link, nor
    one to a node whose own error is reported), so that the node's cross-input check can read it."""
    return all(name in plan_node.values for name in given
               if (inp := spec.input(name)) is not None and not inp.is_socket)


def _checked(spec: NodeSpec, node_id: str, plan_node: PlannedNode) -> list[GraphError]:
    """The node's own check across its inputs; a check that fails (a node pack's bug) is reported
    on the node rather than stopping validation."""
    try:
        return [_error("unsupported", node_id, spec.name, name, text)
                for name, text in spec.check(dict(plan_node.values))]
    except Exception as exc:
        return [_error("bad_value", node_id, spec.name, None,
                       f"its declaration's check failed on these values ({type(exc).__name__}: {exc})")]


def link_target(value: dict) -> tuple[str, str] | None:
    """(node id, output name) of a link object, or None if its fields are not an id and a name."""
    node_id, output = value["node"], value["output"]
    if isinstance(node_id, int) and not isinstance(node_id, bool):
        node_id = str(node_id)
    return (node_id, output) if isinstance(node_id, str) and isinstance(output, str) else None


def _cycle_error(members: list[str], planned: dict[str, PlannedNode]) -> GraphError:
    """One error for a strongly connected component: it names its first node and lists the others."""
    first = members[0]
    if len(members) == 1:
        text = "is linked to itself"
    else:
        listed = ", ".join(f"'{n}'" for n in members[1:CYCLE_MEMBERS_SHOWN])
        more = len(members) - CYCLE_MEMBERS_SHOWN
        text = (f"is part of a cycle of {len(members)} nodes with {listed}"
                + (f" and {more:,} more" if more > 0 else "") + ": a node's result cannot depend on itself")
    return _error("cycle", first, planned[first].spec.name, None, text)


def _upstream_of(graph: nx.DiGraph, outputs: list[str]) -> set[str]:
    """The outputs and every node they depend on (one walk, however many outputs share them)."""
    needed, stack = set(outputs), list(outputs)
    predecessors = graph.pred
    while stack:
        for upstream in predecessors[stack.pop()]:
            if upstream not in needed:
                needed.add(upstream)
                stack.append(upstream)
    return needed


def _natural(node_id: str):
    """Sort key: numbers in numeric order ('2' < '10'), each part of a subgraph path ("5/12") on its
    own; only ASCII digits count as numbers ('²' and '①' are digits to str.isdigit, not to int)."""
    return tuple((0, int(part), part) if part.isascii() and part.isdigit() else (1, 0, part)
                 for part in node_id.split("/"))
