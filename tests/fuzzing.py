"""Fuzzing workflow documents (tests/test_fuzz_workflows.py, and the long run bench/fuzz_workflows.py):
Hypothesis strategies for careless and hostile documents, and the checks each interface must pass.

Each document starts from a real workflow (the examples, the ComfyUI API and UI fixtures, our
version 1 and 2 formats) and gets a few structure-aware mutations: values of the wrong type or
size, weird node ids, links to missing, wrong or looping places, changed types and modes, long
bypass and reroute chains, deep nesting, containers swapped for others. Starting from real
documents lets most of them pass the format checks and reach the converters and validation.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import http.client
import io
import json
import threading
import uuid
from pathlib import Path

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent

WEIRD_IDS = ["²", "①", "٣", "", " ", "0", "-1", "01", "1e3", "a/b", "../x", "\x00", "😀", "x" * 300, "None",
             "10", "3", "ckpt", "sampler"]
WEIRD_SCALARS = [None, True, False, 0, -1, 1, 7, 2**63, 2**64, -(2**64), 10**400, -(10**400), 0.5, -0.0, 1e308,
                 -1e308, float("inf"), float("nan"), "", "²", "①", "x" * 5000, "tiny-shapes", "../../etc/passwd",
                 "/etc/passwd", "euler", "normal", "fixed", "randomize", "CLIP", "MODEL", "LATENT", "IMAGE", "#0",
                 "<script>alert(1)</script>"]
MODES = ["active", "muted", "bypassed", "", None, 0, 2, 4, 1, "BYPASSED"]


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

# Mutable values are built afresh for each example (a list shared between examples would carry one
# example's mutations into the next, and make Hypothesis's generation inconsistent).
fresh_list = st.builds(lambda: [1])
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
                   st.builds(lambda n, o: {"node": n, "output": o},
                             st.one_of(st.sampled_from(WEIRD_IDS + [1, None]), fresh_list),
                             st.one_of(st.sampled_from(["MODEL", "LATENT", "IMAGE", "x", 0, None]), fresh_list)),
                   st.builds(lambda n, s: [n, s], st.one_of(st.sampled_from(WEIRD_IDS + [4, 3, None]), fresh_list),
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
        node["mode"] = data.draw(st.one_of(st.sampled_from(MODES), st.builds(list)))


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
    if doc.get("format") == "latentgraph" and doc.get("version") != 1:
        inputs[name] = {"node": target, "output": data.draw(st.sampled_from(
            ["MODEL", "CLIP", "VAE", "LATENT", "IMAGE", "CONDITIONING", "MASK", "#1", "x"]))}
    else:
        inputs[name] = [target, data.draw(st.integers(-1, 3))]


def bypass_chain(doc, data):
    """Insert a chain of bypassed (or, in the UI format, Reroute) nodes in front of an input."""
    nodes = _node_table(doc)
    length = data.draw(st.sampled_from([2, 10, 300, 1200]))
    if isinstance(nodes, dict) and doc.get("format") == "latentgraph" and doc.get("version") != 1:
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


# --- the checks ---------------------------------------------------------------------------------

def engine_outcome(source, settings) -> str:
    """'format', 'invalid' or 'valid'; any exception but WorkflowFormatError escapes (a failure)."""
    from latentgraph.graph.errors import WorkflowFormatError
    from latentgraph.graph.validate import validate
    from latentgraph.graph.workflow import load_workflow

    try:
        doc = load_workflow(source)
    except WorkflowFormatError as exc:
        assert str(exc)
        return "format"
    assert load_workflow(doc) == doc  # what load_workflow returns loads again, as it is (the server re-loads)
    plan, errors = validate(doc, settings)
    assert (plan is None) == bool(errors)
    json.dumps([error.to_json() for error in errors])  # what the server sends back
    assert all(error.message for error in errors)
    return "invalid" if errors else "valid"


def outcome_of(doc, settings) -> str:
    """engine_outcome of the document as JSON text, which is how the CLI and the server get it."""
    return engine_outcome(dumps(doc).encode(), settings)


def cli(args: list[str]) -> tuple[int, str]:
    """The CLI in this process: (exit code, what it printed on stderr)."""
    from latentgraph.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


def check_cli(doc, outcome: str, folder: Path) -> None:
    """validate exits 0 or 3 as the engine decided, with a message and no traceback; import exits 0
    or 3; run refuses what validation refuses, with 3, before loading any model."""
    path = folder / f"{uuid.uuid4().hex}.json"
    path.write_text(dumps(doc), encoding="utf-8")
    common = ["--models", str(folder / "models"), "--input", str(folder / "input")]
    try:
        code, err = cli(["validate", str(path), *common])
        assert "Traceback" not in err and (code == 3) == bool(err.strip()), (code, err)
        assert code == (0 if outcome == "valid" else 3), (outcome, code, err)
        code, err = cli(["import", str(path), "--allow-unknown", "-o", str(path.with_suffix(".out.json"))])
        assert code in (0, 3) and "Traceback" not in err, (code, err)
        if outcome != "valid":
            code, err = cli(["run", str(path), *common, "--out", str(folder / "output"), "--quiet"])
            assert code == 3 and err.strip() and "Traceback" not in err, (code, err)
    finally:
        path.unlink(missing_ok=True)
        path.with_suffix(".out.json").unlink(missing_ok=True)


@contextlib.contextmanager
def loopback_server(settings, folder: Path):
    """A real server on a free loopback port, in its own thread and event loop: yields the port."""
    from aiohttp import web

    from latentgraph.server.app import create_app

    app = create_app(settings, history_path=folder / "history.sqlite3", library_folder=folder / "library")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def request(port: int, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    """One request: the answer must be 200 or 400 JSON, never a 500 or a converter's internal error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    assert response.status in (200, 400), (response.status, answer[:500])
    assert response.getheader("Content-Type", "").startswith("application/json")
    parsed = json.loads(answer)
    assert "internal error" not in json.dumps(parsed), parsed
    return response.status, parsed


def multipart(field: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"w.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def check_http(doc, outcome: str, port: int) -> list[int]:
    """/api/validate agrees with the engine; an invalid workflow is refused by /api/queue with 400 (a
    valid one would be queued and run); saving and importing answer 200 or 400. Returns the statuses."""
    text = dumps(doc)
    body = ('{"workflow": ' + text + "}").encode()
    statuses = []
    status, answer = request(port, "POST", "/api/validate", body, "application/json")
    statuses.append(status)
    if status == 200:
        assert answer["valid"] == (outcome == "valid") and (answer["errors"] == []) == answer["valid"], answer
    if outcome != "valid":
        status, answer = request(port, "POST", "/api/queue", body, "application/json")
        assert status == 400 and answer["error"]
        statuses.append(status)
    status, _ = request(port, "PUT", "/api/workflows/fuzz", text.encode(), "application/json")
    assert status == (400 if outcome == "format" else 200)
    statuses.append(status)
    statuses.append(request(port, "POST", "/api/import", *multipart("file", text.encode()))[0])
    return statuses
