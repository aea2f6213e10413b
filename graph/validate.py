"""Validation: every problem in a workflow, each naming node id, node type and input, before
anything runs. It also yields the plan the executor runs: the nodes that the outputs need, with
bypassed nodes resolved and defaults filled in. Subgraphs are expanded first (graph/subgraphs.py),
so the plan and the errors name inner nodes by their path ("5/2")."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from latentgraph.graph.errors import GraphError, describe
from latentgraph.graph.settings import Settings
from latentgraph.graph.subgraphs import expand
from latentgraph.graph.workflow import is_link
from latentgraph.nodes import folders, registry
from latentgraph.nodes.spec import BOOLEAN, COMBO, FLOAT, INT, STRING, Input, NodeSpec

MODES = ("active", "muted", "bypassed")


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


def check_value(spec: NodeSpec, node_id: str, inp: Input, value: Any, settings: Settings) -> list[GraphError]:
    """Errors for one constant input value (type, range, choices)."""
    err = lambda kind, text: [_error(kind, node_id, spec.name, inp.name, text)]  # noqa: E731
    if inp.is_socket:
        return err("bad_value", f"expects a link from a {inp.type} output, got the constant {value!r}")
    if inp.type == INT:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return err("bad_value", f"expects a whole number, got {value!r}")
    elif inp.type == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return err("bad_value", f"expects a number, got {value!r}")
    elif inp.type == STRING:
        if not isinstance(value, str):
            return err("bad_value", f"expects text, got {value!r}")
    elif inp.type == BOOLEAN:
        if not isinstance(value, bool):
            return err("bad_value", f"expects true or false, got {value!r}")
    elif inp.type == COMBO:
        choices = folders.resolve_choices(settings, inp.choices_from) if inp.choices_from else list(inp.choices or ())
        if value not in choices:
            if inp.refused_choices and value in inp.refused_choices:
                return err("unsupported", f"{value!r} is not supported: {inp.refused_choices[value]}")
            if inp.choices_from == "checkpoints":
                searched = ", ".join(str(p) for p in folders.checkpoint_roots(settings))
                return err("not_in_choices", f"checkpoint {value!r} not found (searched {searched}); "
                                             f"{folders.available(choices)}")
            if inp.file_folder in folders.SINGLE_MODEL_FOLDERS:
                return err("not_in_choices", folders.not_found(settings, inp.file_folder, value))
            if inp.choices_from == "input_images":
                return err("not_in_choices", f"image {value!r} not found in the input folder {settings.input}")
            shown = ", ".join(map(str, choices[:20])) + (", ..." if len(choices) > 20 else "")
            return err("not_in_choices", f"{value!r} is not one of: {shown}")
    if inp.type in (INT, FLOAT):
        if inp.min is not None and value < inp.min:
            return err("out_of_range", f"{value} is below the minimum {inp.min}")
        if inp.max is not None and value > inp.max:
            return err("out_of_range", f"{value} is above the maximum {inp.max}")
    return []


def coerce(inp: Input, value: Any) -> Any:
    """The value a node function receives for a checked constant."""
    if inp.type == INT:
        return int(value)
    if inp.type == FLOAT:
        return float(value)
    return value


def validate(doc: Any, settings: Settings) -> tuple[Plan | None, list[GraphError]]:
    """Check a workflow (our format, current version). Returns the plan and every error found."""
    expansion = expand(doc)
    plan, errors = _validate_flat(expansion.doc, settings)
    errors = expansion.report(errors)
    return (None if errors else plan), errors


def _validate_flat(doc: Any, settings: Settings) -> tuple[Plan | None, list[GraphError]]:
    specs = registry()
    errors: list[GraphError] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), dict):
        return None, [GraphError("bad_format", "workflow: 'nodes' must be an object of node id -> node")]

    # 1. Each node's own shape and type.
    raw: dict[str, dict] = {}
    for node_id, node in doc["nodes"].items():
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
            errors.append(_error("unknown_type", node_id, node_type, None, f"unknown node type {node_type!r}"))
            continue
        raw[node_id] = {"spec": specs[node_type], "inputs": inputs, "mode": mode}

    # 2. Links: to existing nodes and outputs, of the right type; bypassed nodes resolved.
    def resolve(node_id: str, output: str, seen: frozenset = frozenset()) -> tuple[str, str] | str | None:
        """(node, output) that really provides a value, an error text, or None when the linked
        node is itself invalid (its own error says why)."""
        source = raw.get(node_id)
        if source is None:
            # A node that exists but is malformed or of an unknown type is reported on its own.
            return None if node_id in doc["nodes"] else f"is linked to node '{node_id}', which does not exist"
        spec = source["spec"]
        index = spec.output_index(output)
        if index is None:
            names = ", ".join(o.name for o in spec.outputs) or "none"
            return f"is linked to output {output!r} of {spec.name} '{node_id}', which has outputs: {names}"
        if source["mode"] == "muted":
            return f"is linked to {spec.name} '{node_id}', which is muted"
        if source["mode"] == "bypassed":
            if node_id in seen:
                return "is linked through a loop of bypassed nodes"
            wanted = spec.outputs[index].type
            for inp in spec.inputs:
                value = source["inputs"].get(inp.name)
                if inp.type == wanted and is_link(value):
                    return resolve(value["node"], value["output"], seen | {node_id})
            return f"is linked to bypassed {spec.name} '{node_id}', which has no {wanted} input to pass through"
        return node_id, output

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
                                       f"{spec.name} has no input {name!r} (inputs: {known})"))
                continue
            if not is_link(value):
                if isinstance(value, (list, dict)):
                    problems.append(_error("bad_format", node_id, spec.name, name,
                                           'a link must be {"node": id, "output": name}'))
                    continue
                value_errors = check_value(spec, node_id, inp, value, settings)
                problems += value_errors
                plan_node.values[name] = value if value_errors else coerce(inp, value)
                continue
            target = resolve(str(value["node"]), value["output"])
            if target is None:
                continue
            if isinstance(target, str):
                kind = "missing_output" if "which has outputs" in target else "missing_node"
                problems.append(_error(kind, node_id, spec.name, name, target))
                continue
            out_type = raw[target[0]]["spec"].outputs[raw[target[0]]["spec"].output_index(target[1])].type
            if out_type != inp.type:
                problems.append(_error("type_mismatch", node_id, spec.name, name,
                                       f"expects {inp.type}, but is linked to a {out_type} output "
                                       f"({raw[target[0]]['spec'].name} '{target[0]}'.{target[1]})"))
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
        if spec.check and not problems:
            for input_name, text in spec.check(dict(plan_node.values)):
                problems.append(_error("unsupported", node_id, spec.name, input_name, text))
        planned[node_id] = plan_node
        link_errors[node_id] = problems

    # 3. The graph: cycles, outputs, and the part of it that runs.
    graph = nx.DiGraph()
    graph.add_nodes_from(planned)
    for node_id, plan_node in planned.items():
        for upstream, _ in plan_node.links.values():
            graph.add_edge(upstream, node_id)
    for cycle in nx.simple_cycles(graph):
        members = sorted(cycle)
        node_id = members[0]
        errors.append(_error("cycle", node_id, planned[node_id].spec.name, None,
                             "is part of a cycle: " + " -> ".join(f"'{n}'" for n in cycle + cycle[:1])))
        graph.remove_edges_from(list(zip(cycle, cycle[1:] + cycle[:1])))
    outputs = sorted(n for n, p in planned.items() if p.spec.output_node)
    if not outputs:
        errors.append(GraphError("no_output", "workflow: there is no output node (SaveImage or PreviewImage), "
                                              "so nothing would run"))
    needed = set(outputs)
    for out in outputs:
        needed |= nx.ancestors(graph, out)
    for node_id in sorted(needed, key=_natural):
        errors += link_errors[node_id]
    if errors:
        return None, errors
    return Plan({n: planned[n] for n in needed}, graph.subgraph(needed).copy(), outputs), []


def _natural(node_id: str):
    """Numbers in numeric order, each part of a subgraph path ("5/12") on its own."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in node_id.split("/"))
