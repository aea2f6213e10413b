"""Subgraphs: groups of nodes defined once in a workflow's `subgraphs` and used by nodes of type
"Subgraph" (docs/protocol.md, "Subgraphs").

The engine expands them before validation. Inner node k of Subgraph node 5 becomes node "5/k"
(nested: "5/3/k"); a link to an output of node 5 becomes a link to the inner node that provides
it; `{"subgraph_input": NAME}` becomes what node 5's input NAME holds (a link, a constant, the
definition's default, or nothing). Validation, cache keys, the executor and its events all see
the one flat graph, so inner nodes are named by their path, and their cache keys are those of the
same nodes written out flat (node ids never enter keys).

A problem with a value the Subgraph node supplies (a constant out of range, a link of the wrong
type, a missing input) is reported on the Subgraph node's input, naming the inner node it reaches.

Expansion is iterative and bounded: definitions that contain themselves, nesting deeper than
MAX_DEPTH and graphs that would flatten to more than MAX_NODES nodes are refused before anything
is copied; links are resolved with memoised chains, so the work is linear in the flat graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from latentgraph.graph.errors import GraphError, describe
from latentgraph.graph.workflow import is_link, link

SUBGRAPH = "Subgraph"
SEPARATOR = "/"
MAX_DEPTH = 32  # subgraphs inside subgraphs
MAX_NODES = 50_000  # nodes of the flattened graph


def is_subgraph_input(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"subgraph_input"} and isinstance(value["subgraph_input"], str)


def is_subgraph_node(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == SUBGRAPH


def uses(node: Any) -> str | None:
    """The definition a Subgraph node names, if it names one."""
    name = node.get("subgraph") if is_subgraph_node(node) else None
    return name if isinstance(name, str) else None


def has_subgraphs(doc: Any) -> bool:
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    return isinstance(nodes, dict) and any(is_subgraph_node(n) for n in nodes.values())


def declared(items: Any) -> dict[str, dict]:
    """A definition's `inputs` or `outputs` by name (malformed entries left out)."""
    if not isinstance(items, list):
        return {}
    return {i["name"]: i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)}


def input_type(doc: dict, node: dict, name: str) -> str | None:
    """The type of input `name` of a node of `doc`: its declaration's, or for a Subgraph node its
    definition's (None when unknown)."""
    if is_subgraph_node(node):
        definitions = doc.get("subgraphs") if isinstance(doc.get("subgraphs"), dict) else {}
        definition = definitions.get(node.get("subgraph"))
        item = declared(definition.get("inputs")).get(name) if isinstance(definition, dict) else None
        return item.get("type") if item else None
    from latentgraph.nodes import registry

    spec = registry().get(node.get("type"))
    inp = spec.input(name) if spec else None
    return inp.type if inp else None


def definition_problems(definition: Any, definitions: dict, prefix: str = "") -> list[tuple[str, str]]:
    """What is wrong with one definition by itself: (error kind, sentence) naming inner nodes as
    `prefix` + id. `definitions` tells the input types of the subgraphs it uses; those are checked
    where they are used."""
    from latentgraph.nodes import registry

    if not isinstance(definition, dict):
        return [("bad_format", "a subgraph definition must be an object with 'nodes', 'inputs' and 'outputs'")]
    problems = []
    nodes = definition.get("nodes")
    if not isinstance(nodes, dict):
        problems.append(("bad_format", "'nodes' must be an object of node id -> node"))
        nodes = {}
    for key in ("inputs", "outputs"):
        items = definition.get(key, [])
        if not isinstance(items, list):
            problems.append(("bad_format", f"'{key}' must be a list of {{\"name\", \"type\"}}"))
            continue
        names = set()
        for index, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name or not isinstance(item.get("type", ""), str):
                problems.append(("bad_format", f"{key[:-1]} #{index + 1} must be an object with a 'name' and a "
                                               "'type' string"))
            elif name in names:
                problems.append(("bad_format", f"{key[:-1]} {name!r} is declared twice"))
            names.add(name)
    inputs, specs = declared(definition.get("inputs")), registry()
    known = ", ".join(inputs) or "none"
    for name, item in declared(definition.get("outputs")).items():
        source = item.get("from")
        if is_link(source):
            if str(source["node"]) not in nodes:
                problems.append(("missing_node", f"output {name!r} comes from node '{prefix}{source['node']}', "
                                                 "which it does not have"))
        elif is_subgraph_input(source):
            if source["subgraph_input"] not in inputs:
                problems.append(("bad_format", f"output {name!r} comes from input {source['subgraph_input']!r}, "
                                               f"which it does not declare (inputs: {known})"))
        else:
            problems.append(("bad_format", f"output {name!r} needs 'from': {{\"node\", \"output\"}} or "
                                           "{\"subgraph_input\"}"))
    for node_id, node in nodes.items():
        values = node.get("inputs") if isinstance(node, dict) else None
        for input_name, value in (values.items() if isinstance(values, dict) else ()):
            if not is_subgraph_input(value):
                continue
            where = f"node '{prefix}{node_id}', input {input_name!r}"
            item = inputs.get(value["subgraph_input"])
            if item is None:
                problems.append(("bad_format", f"{where} uses input {value['subgraph_input']!r}, which it does "
                                               f"not declare (inputs: {known})"))
                continue
            wanted = _inner_type(node, input_name, specs, definitions)
            if wanted is not None and item.get("type") and wanted != item["type"]:
                problems.append(("type_mismatch", f"{where} expects {wanted}, but takes input {item['name']!r}, "
                                                  f"declared {item['type']}"))
    return problems


def component_problems(name: str, definition: Any) -> list[GraphError]:
    """What is wrong with a definition saved on its own (the components library): its shape, and
    the definitions it uses, which it carries in its own `subgraphs` (nesting, self-containment)."""
    if not isinstance(definition, dict):
        return [GraphError("bad_format", f"component {name!r}: {definition_problems(definition, {})[0][1]}")]
    nested = definition.get("subgraphs", {})
    if not isinstance(nested, dict):
        return [GraphError("bad_format", f"component {name!r}: 'subgraphs' must be an object of id -> definition")]
    own = {k: v for k, v in definition.items() if k != "subgraphs"}
    doc = {"nodes": {name: {"type": SUBGRAPH, "subgraph": name}}, "subgraphs": {**nested, name: own}}
    return expand(doc).errors


def _inner_type(node: dict, input_name: str, specs, definitions: dict) -> str | None:
    """The type an inner node's input takes: its declaration's, or a nested subgraph's input's."""
    if is_subgraph_node(node):
        definition = definitions.get(uses(node))
        item = declared(definition.get("inputs")).get(input_name) if isinstance(definition, dict) else None
        return item.get("type") if item else None
    spec = specs.get(node.get("type"))
    inp = spec.input(input_name) if spec else None
    return inp.type if inp else None


@dataclass
class _Instance:
    definition: dict
    mode: str
    bindings: dict[str, Any]  # input name -> reference or constant
    broken: bool = False  # its own error says why; links to it are not reported again


@dataclass(frozen=True)
class _Ref:
    """A link or subgraph input still to be resolved: ("node", path, output) or ("in", Subgraph node, input)."""

    kind: str
    node: str
    name: str


@dataclass
class _Broken:
    kind: str
    text: str


_MISSING, _SKIP = object(), object()


@dataclass
class Expansion:
    """The flat workflow, the errors expansion found, and how to report validation's errors."""

    doc: dict
    errors: list[GraphError] = field(default_factory=list)
    # (inner node, input) -> (Subgraph node, its input) that supplied the value
    origins: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    # (node, input) whose problems follow from an error reported already
    skip: set[tuple[str, str]] = field(default_factory=set)
    fatal: bool = False  # the graph could not be flattened: validation's errors would only mislead

    def report(self, errors: list[GraphError]) -> list[GraphError]:
        """Expansion's errors, then validation's, each on the node whose author can fix it."""
        out, seen = [], set()
        errors = [] if self.fatal else [e for e in errors if (e.node_id, e.input) not in self.skip
                                        and not (e.kind == "no_output" and self.errors)]  # they may be inside
        for error in self.errors + errors:
            attributed = self._attribute(error)
            if attributed is not error:  # one report per Subgraph node input, however many inner uses
                key = (attributed.kind, attributed.node_id, attributed.input)
                if key in seen:
                    continue
                seen.add(key)
            out.append(attributed)
        return out

    def _attribute(self, error: GraphError) -> GraphError:
        origin = self.origins.get((error.node_id, error.input))
        if origin is None:
            return error
        prefix = describe(error.node_id, error.node_type, error.input) + ": "
        text = error.message[len(prefix):] if error.message.startswith(prefix) else error.message
        outer, name = origin
        return GraphError(error.kind, f"{describe(outer, SUBGRAPH, name)}: {text} (inside: {error.node_type} "
                                      f"'{error.node_id}', input '{error.input}')", outer, SUBGRAPH, name)


def expand(doc: Any) -> Expansion:
    """The workflow with every Subgraph node replaced by its definition's nodes."""
    if not has_subgraphs(doc):
        return Expansion(doc)
    return _Expander(doc).run()


class _Expander:
    def __init__(self, doc: dict):
        self.doc = doc
        definitions = doc.get("subgraphs", {})
        self.errors: list[GraphError] = []
        if not isinstance(definitions, dict):
            self.errors.append(GraphError("bad_format", "workflow: 'subgraphs' must be an object of id -> definition"))
            definitions = {}
        self.definitions = definitions
        self.instances: dict[str, _Instance] = {}
        self.flat: dict[str, Any] = {}
        self.memo: dict[_Ref, tuple[Any, tuple | None]] = {}
        self.expansion = Expansion({k: v for k, v in doc.items() if k != "subgraphs"}, self.errors)

    def run(self) -> Expansion:
        top = self.doc["nodes"]
        cycles, depth, size = _measure(top, self.definitions)
        total = sum(size.get(uses(n), 1) for n in top.values())
        if total > MAX_NODES:
            self.errors.append(GraphError("bad_format", f"workflow: its subgraphs expand to {total} nodes; at most "
                                                        f"{MAX_NODES} are accepted"))
            self.expansion.fatal = True
            return self.expansion
        scopes = [("", top, None)]  # (id prefix, nodes, the Subgraph node they belong to)
        while scopes:
            prefix, nodes, owner = scopes.pop()
            for key, node in nodes.items():
                node_id = prefix + str(key)
                if node_id in self.flat or node_id in self.instances:
                    self._error("bad_format", node_id, None, None, "its id is also the path of a subgraph's inner "
                                                                   "node; rename it")
                    self.expansion.fatal = True
                    continue
                if not is_subgraph_node(node):
                    self.flat[node_id] = self._copy(node, prefix, owner)
                    continue
                child = self._instance(node_id, node, prefix, owner, cycles, depth)
                if child is not None:
                    scopes.append((node_id + SEPARATOR, child.definition["nodes"], node_id))
        self._resolve_links()
        self.expansion.doc["nodes"] = self.flat
        return self.expansion

    def _error(self, kind, node_id, node_type, input_name, text) -> None:
        self.errors.append(GraphError(kind, f"{describe(node_id, node_type, input_name)}: {text}", node_id,
                                      node_type, input_name))

    def _copy(self, node: Any, prefix: str, owner: str | None) -> Any:
        """An inner node under its path, its links and subgraph inputs turned into references."""
        if not isinstance(node, dict) or not isinstance(node.get("inputs", {}), dict):
            return node  # validation reports it
        return {**node, "inputs": {name: _reference(value, prefix, owner)
                                   for name, value in node.get("inputs", {}).items()}}

    def _instance(self, node_id, node, prefix, owner, cycles, depth) -> _Instance | None:
        """Record a Subgraph node; its definition when its inner nodes are to be expanded."""
        name = node.get("subgraph")
        definition = self.definitions.get(name) if isinstance(name, str) else None
        inputs = node.get("inputs", {})
        mode = node.get("mode", "active")
        bindings = {k: _reference(v, prefix, owner) for k, v in inputs.items()} if isinstance(inputs, dict) else {}
        instance = _Instance(definition if isinstance(definition, dict) else {}, mode, bindings, broken=True)
        self.instances[node_id] = instance
        if mode == "muted":  # never runs, so its definition does not matter (as for other node types)
            instance.broken = False
            return None
        if not isinstance(name, str):
            return self._error("bad_format", node_id, SUBGRAPH, None, "'subgraph' must name a subgraph definition")
        if definition is None:
            known = ", ".join(map(repr, self.definitions)) or "none"
            return self._error("unknown_type", node_id, SUBGRAPH, None,
                               f"uses subgraph {name!r}, which this workflow does not define (defined: {known})")
        if not isinstance(inputs, dict) or mode not in ("active", "bypassed"):
            return self._error("bad_format", node_id, SUBGRAPH, None,
                               "'inputs' must be an object and 'mode' one of active, muted, bypassed")
        if name in cycles:
            return self._error("cycle", node_id, SUBGRAPH, None, f"subgraph {name!r} contains itself: "
                                                                 + " -> ".join(map(repr, cycles[name])))
        if node_id.count(SEPARATOR) + depth.get(name, 0) > MAX_DEPTH:
            return self._error("bad_format", node_id, SUBGRAPH, None,
                               f"subgraph {name!r} nests subgraphs more than {MAX_DEPTH} deep")
        problems = definition_problems(definition, self.definitions, prefix=node_id + SEPARATOR)
        for kind, problem in problems:
            self._error(kind, node_id, SUBGRAPH, None, f"subgraph {name!r}: {problem}")
        if problems:
            return None
        instance.broken = False
        known = declared(definition.get("inputs"))
        for input_name in inputs:
            if input_name not in known:
                self._error("unknown_input", node_id, SUBGRAPH, input_name,
                            f"subgraph {name!r} has no input {input_name!r} (inputs: {', '.join(known) or 'none'})")
                del bindings[input_name]
        return instance if mode == "active" else None

    def _resolve_links(self) -> None:
        expansion = self.expansion
        for node_id, node in self.flat.items():
            inputs = node.get("inputs") if isinstance(node, dict) else None
            for name, value in list(inputs.items() if isinstance(inputs, dict) else ()):
                if not isinstance(value, _Ref):
                    continue
                result, origin = self._resolve(value)
                if origin is not None:
                    expansion.origins[(node_id, name)] = origin
                if isinstance(result, _Broken):
                    self._error(result.kind, node_id, node.get("type"), name, result.text)
                if result is _MISSING or result is _SKIP or isinstance(result, _Broken):
                    del inputs[name]
                    if result is not _MISSING:
                        expansion.skip.add((node_id, name))
                else:
                    inputs[name] = dict(result) if isinstance(result, dict) else result

    def _resolve(self, ref: _Ref) -> tuple[Any, tuple | None]:
        """(what a reference stands for, the Subgraph node input that supplied it) following the chain
        through Subgraph inputs and outputs; every step on the way is memoised."""
        chain, seen, current, origin = [], set(), ref, None
        while isinstance(current, _Ref):
            if current in self.memo:
                current, origin = self.memo[current]
                break
            if current in seen:
                current = _Broken("cycle", "is linked to itself through subgraph inputs and outputs")
                break
            seen.add(current)
            chain.append(current)
            current = self._step(current)
        for item in reversed(chain):
            if origin is None and item.kind == "in":
                origin = (item.node, item.name)
            self.memo[item] = (current, origin)
        return self.memo[ref]

    def _step(self, ref: _Ref) -> Any:
        kind, node_id, name = ref.kind, ref.node, ref.name
        instance = self.instances.get(node_id)
        if kind == "in":  # a Subgraph node's input, as seen from inside
            if name in instance.bindings:
                return instance.bindings[name]
            item = declared(instance.definition.get("inputs")).get(name, {})
            return item["default"] if "default" in item else _MISSING
        if instance is None:  # an ordinary node (validation says if there is no such node)
            return link(node_id, name)
        if instance.broken:
            return _SKIP
        if instance.mode == "muted":
            return _Broken("missing_node", f"is linked to Subgraph '{node_id}', which is muted")
        outputs = declared(instance.definition.get("outputs"))
        output = outputs.get(name)
        if output is None:
            return _Broken("missing_output", f"is linked to output {name!r} of Subgraph '{node_id}', which has "
                                             f"outputs: {', '.join(outputs) or 'none'}")
        if instance.mode == "bypassed":  # the first input of the output's type passes through
            for item in declared(instance.definition.get("inputs")).values():
                if item.get("type") == output.get("type") and isinstance(instance.bindings.get(item["name"]), _Ref):
                    return instance.bindings[item["name"]]
            return _Broken("missing_node", f"is linked to bypassed Subgraph '{node_id}', which has no "
                                           f"{output.get('type')} input to pass through")
        return _reference(output["from"], node_id + SEPARATOR, node_id)


def _reference(value: Any, prefix: str, owner: str | None) -> Any:
    """A link or subgraph input as a reference to resolve; constants stay."""
    if is_link(value):
        return _Ref("node", prefix + str(value["node"]), str(value["output"]))
    if is_subgraph_input(value) and owner is not None:
        return _Ref("in", owner, value["subgraph_input"])
    return value


def _measure(top: dict, definitions: dict) -> tuple[dict[str, list], dict[str, int], dict[str, int]]:
    """For the definitions reachable from the top-level nodes: a cycle through each one that
    contains itself, how deep each nests, and how many nodes each flattens to (networkx's
    algorithms here are iterative, so hostile nesting cannot exhaust the stack)."""
    def used(definition_id: str) -> list[str]:
        nodes = definitions[definition_id].get("nodes") if isinstance(definitions[definition_id], dict) else None
        return [uses(n) for n in (nodes.values() if isinstance(nodes, dict) else ()) if uses(n) in definitions]

    graph = nx.DiGraph()
    pending = [uses(n) for n in top.values() if uses(n) in definitions]
    graph.add_nodes_from(pending)
    while pending:
        name = pending.pop()
        for child in used(name):
            if child not in graph:
                pending.append(child)
            graph.add_edge(name, child)
    cycles: dict[str, list] = {}
    for component in nx.strongly_connected_components(graph):
        first = next(iter(component))
        if len(component) > 1 or graph.has_edge(first, first):
            loop = [edge[0] for edge in nx.find_cycle(graph.subgraph(component), source=first)]
            cycles.update(dict.fromkeys(component, loop + loop[:1]))
    depth: dict[str, int] = {}
    size: dict[str, int] = {}
    acyclic = graph.subgraph(n for n in graph if n not in cycles)
    for name in reversed(list(nx.topological_sort(acyclic))):
        children = used(name)  # one that contains itself is not expanded: it counts as one node
        depth[name] = 1 + max((depth.get(child, 0) for child in children), default=0)
        nodes = definitions[name].get("nodes") if isinstance(definitions[name], dict) else None
        size[name] = sum(size.get(uses(n), 1) for n in (nodes.values() if isinstance(nodes, dict) else ()))
    return cycles, depth, size
