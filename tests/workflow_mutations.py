"""Hypothesis strategies for careless and hostile workflow documents (tests/test_fuzz_workflows.py
and bench/fuzz_workflows.py).

Each document starts from a real workflow (the examples, the ComfyUI API and UI fixtures, our
version 1 and 2 formats) and gets a few structure-aware mutations: values of the wrong type or
size, weird node ids, links to missing, wrong or looping places, changed types and modes, long
bypass and reroute chains, deep nesting, containers swapped for others. Starting from real
documents lets most of them pass the format checks and reach the converters and validation.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent

WEIRD_IDS = ["²", "①", "٣", "", " ", "0", "-1", "01", "1e3", "a/b", "../x", "\x00", "😀", "x" * 300, "None",
             "10", "3", "ckpt", "sampler"]
WEIRD_SCALARS = [None, True, False, 0, -1, 1, 7, 2**63, 2**64, -(2**64), 10**400, -(10**400), 0.5, -0.0, 1e308,
                 -1e308, float("inf"), float("nan"), "", "²", "①", "x" * 5000, "tiny-shapes", "../../etc/passwd",
                 "/etc/passwd", "euler", "normal", "fixed", "randomize", "CLIP", "MODEL", "LATENT", "IMAGE", "#0",
                 "<script>alert(1)</script>"]
MODES = ["active", "muted", "bypassed", "", None, 0, 2, 4, 1, [], "BYPASSED"]


def _positional(doc: dict) -> dict:
    """Our version 2 document as version 1: links as [node id, output index]."""
    from latentgraph.nodes import registry

    specs, nodes = registry(), doc["nodes"]
    out = copy.deepcopy(doc)
    out["version"] = 1
    for node in out["nodes"].values():
        for name, value in node.get("inputs", {}).items():
            if isinstance(value, dict) and set(value) == {"node", "output"}:
                spec = specs.get(nodes.get(value["node"], {}).get("type"))
                index = spec.output_index(value["output"]) if spec else None
                node["inputs"][name] = [value["node"], index if index is not None else 0]
    return out


def seeds() -> list[dict]:
    """The real documents mutations start from."""
    ours = [json.loads(p.read_text()) for p in sorted((ROOT / "examples").glob("*.json"))]
    comfy = [json.loads(p.read_text()) for p in sorted((ROOT / "tests" / "data" / "comfyui").glob("*.json"))]
    return ours + [_positional(doc) for doc in ours] + comfy


SEEDS = seeds()

json_scalars = st.one_of(st.sampled_from(WEIRD_SCALARS), st.integers(), st.floats(),
                         st.text(max_size=12), st.booleans(), st.none())
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=8)


@st.composite
def deep(draw) -> object:
    """A value nested far deeper than any workflow (lists or objects, 60 to 3,000 levels)."""
    depth = draw(st.sampled_from([60, 64, 65, 200, 1000, 3000]))
    as_object = draw(st.booleans())
    value: object = draw(json_scalars)
    for _ in range(depth):
        value = {"x": value} if as_object else [value]
    return value


values = st.one_of(json_values, json_values, json_values, deep(),
                   st.builds(lambda n, o: {"node": n, "output": o}, st.sampled_from(WEIRD_IDS + [1, None, [1]]),
                             st.sampled_from(["MODEL", "CLIP", "LATENT", "IMAGE", "x", 0, None, []])),
                   st.builds(lambda n, s: [n, s], st.sampled_from(WEIRD_IDS + [4, 3, None, [4]]),
                             st.sampled_from([0, 1, 2, -1, 99, 10**30, True, "0", None])))


def _containers(doc: object) -> list:
    """Every list and object in the document, the document itself first."""
    found, stack = [], [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, (dict, list)):
            found.append(value)
            stack.extend(value.values() if isinstance(value, dict) else value)
    return found


def _node_table(doc: object) -> dict | list | None:
    """The nodes of a document in any of the formats (a dict of id -> node, or the UI's list)."""
    if isinstance(doc, dict):
        nodes = doc.get("nodes")
        if isinstance(nodes, (dict, list)):
            return nodes
        if all(isinstance(v, dict) for v in doc.values()):
            return doc  # ComfyUI API
    return None


def _ids(doc: object) -> list:
    nodes = _node_table(doc)
    if isinstance(nodes, dict):
        return list(nodes)
    if isinstance(nodes, list):
        return [n.get("id") for n in nodes if isinstance(n, dict)]
    return []


def _node_types() -> list[str]:
    from latentgraph.nodes import registry

    return sorted(registry()) + ["Reroute", "PrimitiveNode", "Note", "FreeU_V2", "", "ksampler"]


# --- mutations: each changes `doc` in place using draws from `data` -------------------------------

def set_anywhere(doc, data):
    container = data.draw(st.sampled_from(_containers(doc)))
    value = data.draw(values)
    if isinstance(container, dict):
        key = data.draw(st.one_of(st.sampled_from(sorted(container) or ["x"]), st.text(max_size=6)))
        container[key] = value
    elif container:
        container[data.draw(st.integers(0, len(container) - 1))] = value
    else:
        container.append(value)


def delete_anywhere(doc, data):
    container = data.draw(st.sampled_from(_containers(doc)))
    if container:
        if isinstance(container, dict):
            del container[data.draw(st.sampled_from(sorted(container)))]
        else:
            del container[data.draw(st.integers(0, len(container) - 1))]


def swap_container(doc, data):
    """An object becomes a list of its values, or a list an object keyed by position."""
    container = data.draw(st.sampled_from(_containers(doc)))
    if isinstance(container, dict) and container:
        items = list(container.values())
        container.clear()
        container.update({"0": items})
    elif isinstance(container, list):
        container[:] = [{str(i): v for i, v in enumerate(container)}] if container else [None]


def rename_node(doc, data):
    nodes = _node_table(doc)
    ids = _ids(doc)
    if not ids:
        return
    old, new = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(WEIRD_IDS + [5, 7.5, None, True]))
    if isinstance(nodes, dict):
        nodes[new if isinstance(new, str) else str(new)] = nodes.pop(old)
    else:
        for node in nodes:
            if isinstance(node, dict) and node.get("id") == old:
                node["id"] = new


def retype_node(doc, data):
    nodes = _node_table(doc)
    node = _pick_node(nodes, data)
    if node is not None:
        key = "class_type" if "class_type" in node else "type"
        node[key] = data.draw(st.one_of(st.sampled_from(_node_types()), values))


def set_mode(doc, data):
    node = _pick_node(_node_table(doc), data)
    if node is not None:
        node["mode"] = data.draw(st.sampled_from(MODES))


def relink(doc, data):
    """Point an input at another node and output (maybe itself, maybe downstream: a cycle)."""
    nodes = _node_table(doc)
    node = _pick_node(nodes, data)
    ids = _ids(doc)
    if node is None or not ids:
        return
    target = data.draw(st.sampled_from(ids))
    if isinstance(nodes, list):  # UI: retarget a link's origin
        links = doc.get("links")
        if isinstance(links, list) and links:
            entry = links[data.draw(st.integers(0, len(links) - 1))]
            if isinstance(entry, list) and len(entry) >= 3:
                entry[1], entry[2] = target, data.draw(st.integers(-1, 3))
        return
    inputs = node.get("inputs")
    if not isinstance(inputs, dict):
        return
    name = data.draw(st.sampled_from(sorted(inputs) + ["model", "samples", "clip", "images"]))
    if doc.get("format") == "latentgraph" and doc.get("version") == 2:
        inputs[name] = {"node": target, "output": data.draw(st.sampled_from(
            ["MODEL", "CLIP", "VAE", "LATENT", "IMAGE", "CONDITIONING", "MASK", "#1", "x"]))}
    else:
        inputs[name] = [target, data.draw(st.integers(-1, 3))]


def bypass_chain(doc, data):
    """Insert a chain of bypassed (or, in the UI format, Reroute) nodes in front of an input."""
    nodes = _node_table(doc)
    length = data.draw(st.sampled_from([2, 10, 300, 1200]))
    if isinstance(nodes, dict) and doc.get("format") == "latentgraph" and doc.get("version") == 2:
        node = _pick_node(nodes, data)
        inputs = node.get("inputs") if node else None
        if not isinstance(inputs, dict):
            return
        links = [k for k, v in inputs.items() if isinstance(v, dict) and "node" in v]
        if not links:
            return
        name = data.draw(st.sampled_from(links))
        previous = inputs[name]
        for i in range(length):
            nodes[f"bypass{i}"] = {"type": data.draw(st.sampled_from(["LatentUpscaleBy", "ImageInvert", "LatentFlip"])),
                                   "mode": "bypassed", "inputs": {"samples": previous, "image": previous}}
            previous = {"node": f"bypass{i}", "output": data.draw(st.sampled_from(["LATENT", "IMAGE"]))}
        inputs[name] = previous
    elif isinstance(nodes, list) and isinstance(doc.get("links"), list) and doc["links"]:
        entry = doc["links"][data.draw(st.integers(0, len(doc["links"]) - 1))]
        if not isinstance(entry, list) or len(entry) < 5:
            return
        source, slot, next_link = entry[1], entry[2], 100_000
        for i in range(length):  # Reroute i reads the previous one through link next_link + i
            doc["links"].append([next_link + i, source, slot, 200_000 + i, 0, "*"])
            nodes.append({"id": 200_000 + i, "type": "Reroute", "inputs": [{"name": "", "link": next_link + i}],
                          "outputs": [{"name": "", "type": "*", "links": []}]})
            source, slot = 200_000 + i, 0
        entry[1], entry[2] = source, slot


def wrap(doc, data):
    container = data.draw(st.sampled_from(_containers(doc)[1:] or _containers(doc)))
    if isinstance(container, dict) and container:
        key = data.draw(st.sampled_from(sorted(container)))
        container[key] = data.draw(st.sampled_from([[container[key]], {"x": container[key]}, [None]]))


def _pick_node(nodes, data) -> dict | None:
    if isinstance(nodes, dict) and nodes:
        node = nodes[data.draw(st.sampled_from(sorted(nodes, key=str)))]
    elif isinstance(nodes, list) and nodes:
        node = nodes[data.draw(st.integers(0, len(nodes) - 1))]
    else:
        return None
    return node if isinstance(node, dict) else None


MUTATIONS = [set_anywhere, set_anywhere, delete_anywhere, swap_container, rename_node, retype_node, set_mode,
             relink, relink, bypass_chain, wrap]


def dumps(doc: object) -> str:
    """JSON text of a document, however deep (json.dumps recurses once per level)."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return json.dumps(doc)
    finally:
        sys.setrecursionlimit(limit)


@st.composite
def documents(draw) -> object:
    """A mutated real workflow (most of the time) or any JSON value."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.one_of(json_values, deep()))
    doc = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    data = _Draw(draw)
    for _ in range(draw(st.integers(1, 4))):
        draw(st.sampled_from(MUTATIONS))(doc, data)
    return doc


class _Draw:
    """What the mutations call `data`: st.data()'s draw, from inside a composite strategy."""

    def __init__(self, draw):
        self.draw = draw
