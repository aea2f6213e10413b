"""Hostile and careless input (issue 22): every case found, as a regression test. Each bad input
gets a documented error naming the node (and input) over the Python API, the CLI (exit 3) and HTTP
(400 JSON), in bounded time; uploads are checked before decoding and stored re-encoded."""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import gc
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import FormData
from helpers import txt2img
from PIL import Image

import latentgraph
from latentgraph.cli import main
from latentgraph.graph import limits
from latentgraph.graph.errors import WorkflowFormatError
from latentgraph.graph.executor import Executor
from latentgraph.graph.gc_pause import gc_paused
from latentgraph.graph.limits import Limits
from latentgraph.graph.settings import Settings
from latentgraph.graph.validate import _natural, validate
from latentgraph.graph.workflow import Workflow, load_workflow
from latentgraph.nodes import folders
from latentgraph.server import files
from latentgraph.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "tiny-shapes"  # found without a models folder


@pytest.fixture
def bare(tmp_path) -> Settings:
    """Empty folders; the shipped model is the only checkpoint."""
    for name in ("models", "input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=tmp_path / "models", input=tmp_path / "input", output=tmp_path / "output",
                    temp=tmp_path / "temp", device="cpu")


def errors_of(doc, settings) -> list:
    plan, errors = validate(load_workflow(doc), settings)
    assert (plan is None) == bool(errors)
    return errors


def ring(n: int) -> dict:
    """n LatentAdd nodes, node i reading nodes i+1 and i+2: cycles beyond counting, one component."""
    nodes = {str(i): {"type": "LatentAdd", "inputs": {"samples1": {"node": str((i + 1) % n), "output": "LATENT"},
                                                      "samples2": {"node": str((i + 2) % n), "output": "LATENT"}}}
             for i in range(n)}
    nodes["decode"] = {"type": "VAEDecode", "inputs": {"samples": {"node": "0", "output": "LATENT"},
                                                       "vae": {"node": "ckpt", "output": "VAE"}}}
    nodes["ckpt"] = {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SHIPPED}}
    nodes["save"] = {"type": "SaveImage", "inputs": {"images": {"node": "decode", "output": "IMAGE"}}}
    return {"format": "latentgraph", "version": 2, "nodes": nodes}


# --- validation: linear, bounded ---------------------------------------------------------------

def test_many_cycles_are_one_error_per_strongly_connected_component(bare):
    started = time.perf_counter()
    errors = errors_of(ring(30), bare)  # took 136 s and 1.2 GB as one error per simple cycle
    assert time.perf_counter() - started < 30  # a hang guard, not a benchmark (bench/bench_validation.py)
    assert [e.kind for e in errors] == ["cycle"]
    error = errors[0]
    assert (error.node_id, error.node_type) == ("0", "LatentAdd")
    assert "cycle of 30 nodes" in error.message and "'1', '2'" in error.message and "and 20 more" in error.message

    doc = ring(3)
    doc["nodes"]["x"] = {"type": "LatentFlip", "inputs": {"samples": {"node": "x", "output": "LATENT"}}}
    doc["nodes"]["y"] = {"type": "LatentAdd", "inputs": {"samples1": {"node": "x", "output": "LATENT"},
                                                         "samples2": {"node": "0", "output": "LATENT"}}}
    doc["nodes"]["save2"] = {"type": "SaveImage", "inputs": {"images": {"node": "d2", "output": "IMAGE"}}}
    doc["nodes"]["d2"] = {"type": "VAEDecode", "inputs": {"samples": {"node": "y", "output": "LATENT"},
                                                          "vae": {"node": "ckpt", "output": "VAE"}}}
    cycles = sorted((e.node_id, e.message) for e in errors_of(doc, bare) if e.kind == "cycle")
    assert [c[0] for c in cycles] == ["0", "x"]
    assert "linked to itself" in cycles[1][1]


def test_each_folder_is_listed_once_per_validation(bare, monkeypatch):
    listed = []
    real = folders.resolve_choices
    monkeypatch.setattr(folders, "resolve_choices", lambda settings, source: listed.append(source) or real(
        settings, source))
    Image.new("RGB", (8, 8)).save(bare.input / "a.png")
    doc = txt2img(ckpt=SHIPPED)
    for i in range(200):
        doc["nodes"][f"load{i}"] = {"type": "LoadImage", "inputs": {"image": "a.png" if i % 2 else "missing.png"}}
        doc["nodes"][f"ckpt{i}"] = {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": SHIPPED}}
    validate(doc, bare)
    assert sorted(listed) == ["checkpoints", "input_images"]


def test_node_count_and_document_size_are_capped_with_clear_errors(bare, tmp_path):
    small = Settings(**{**bare.__dict__, "limits": Limits(max_nodes=5)})
    doc = txt2img(ckpt=SHIPPED)  # 7 nodes
    with pytest.raises(WorkflowFormatError, match="7 nodes, over the limit of 5"):
        load_workflow(doc, small.limits)
    errors = validate(doc, small)[1]
    assert [e.kind for e in errors] == ["too_many_nodes"] and "over the limit of 5" in errors[0].message
    with pytest.raises(WorkflowFormatError, match="7 nodes"):
        Executor(small).run(doc)
    # ComfyUI documents are counted before they are converted.
    api = json.loads((ROOT / "tests/data/comfyui/txt2img_api.json").read_text())
    with pytest.raises(WorkflowFormatError, match="over the limit of 5"):
        load_workflow(api, small.limits)
    # Size: text, bytes and files.
    text = json.dumps(doc)
    with pytest.raises(WorkflowFormatError, match="over the limit"):
        load_workflow(text, Limits(max_bytes=100))
    (tmp_path / "big.json").write_text(text)
    with pytest.raises(WorkflowFormatError, match="big.json is over the limit of 100 bytes"):
        load_workflow(tmp_path / "big.json", Limits(max_bytes=100))
    with pytest.raises(WorkflowFormatError, match="zero is over the limit"):  # endless: read up to the limit only
        load_workflow(Path("/dev/zero"), Limits(max_bytes=100))
    # The default is generous: 10,000 nodes.
    assert Limits().max_nodes == 10_000 and Settings().limits.max_nodes == 10_000


def test_too_many_errors_are_counted_not_listed(bare):
    doc = txt2img(ckpt=SHIPPED)
    for i in range(1500):
        doc["nodes"][f"bad{i}"] = {"type": "SaveImage", "inputs": {}}  # each misses its images
    errors = validate(doc, bare)[1]
    assert len(errors) == 1001 and errors[-1].kind == "too_many_errors"
    assert "500 more problems" in errors[-1].message


def test_a_chain_of_1000_bypassed_nodes_is_followed_without_recursion(bare):
    doc = txt2img(ckpt=SHIPPED)
    previous = {"node": "latent", "output": "LATENT"}
    for i in range(1000):
        doc["nodes"][f"b{i}"] = {"type": "LatentUpscaleBy", "mode": "bypassed", "inputs": {"samples": previous}}
        previous = {"node": f"b{i}", "output": "LATENT"}
    doc["nodes"]["sampler"]["inputs"]["latent_image"] = previous
    plan, errors = validate(doc, bare)
    assert errors == [] and plan.nodes["sampler"].links["latent_image"] == ("latent", "LATENT")
    # A loop of bypassed nodes is an error naming the node that reads from it.
    doc["nodes"]["b0"]["inputs"]["samples"] = {"node": "b999", "output": "LATENT"}
    errors = validate(doc, bare)[1]
    assert [(e.node_id, e.input, e.kind) for e in errors] == [("sampler", "latent_image", "missing_node")]
    assert "loop of bypassed nodes" in errors[0].message


def test_a_chain_of_1000_reroutes_in_a_comfyui_workflow(bare):
    doc = json.loads((ROOT / "tests/data/comfyui/txt2img_ui.json").read_text())
    entry = next(link for link in doc["links"] if link[3] == 3 and link[5] == "LATENT")  # into the sampler
    source = (entry[1], entry[2])
    for i in range(1000):
        doc["links"].append([5000 + i, *source, 9000 + i, 0, "*"])
        doc["nodes"].append({"id": 9000 + i, "type": "Reroute", "inputs": [{"name": "", "link": 5000 + i}],
                             "outputs": [{"name": "", "type": "*", "links": []}]})
        source = (9000 + i, 0)
    entry[1], entry[2] = source
    converted = load_workflow(doc)
    assert converted["nodes"]["3"]["inputs"]["latent_image"] == {"node": "5", "output": "LATENT"}


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_numbers_are_value_errors_naming_node_and_input(bare, digits):
    doc = txt2img(ckpt=SHIPPED)
    doc["nodes"]["sampler"]["inputs"].update(cfg=10**digits, steps=-(10**digits), seed=10**digits)
    errors = {(e.input, e.kind): e for e in errors_of(doc, bare)}
    assert set(errors) == {("cfg", "bad_value"), ("steps", "out_of_range"), ("seed", "out_of_range")}
    cfg = errors["cfg", "bad_value"]
    assert (cfg.node_id, cfg.node_type) == ("sampler", "KSampler")
    assert f"a {digits + 1:,}-digit number" in cfg.message and len(cfg.message) < 200
    for value in (float("inf"), float("nan"), 1e308 * 10):
        doc["nodes"]["sampler"]["inputs"] = {**txt2img()["nodes"]["sampler"]["inputs"], "cfg": value}
        assert [(e.input, e.kind) for e in errors_of(doc, bare)] == [("cfg", "bad_value")]
    # As JSON text: 400 digits are read (and refused by validation); beyond Python's 4,300 the text is refused.
    text = json.dumps(txt2img(ckpt=SHIPPED)).replace('"cfg": 6.0', f'"cfg": {"9" * digits}')
    if digits < 4300:
        assert [(e.node_id, e.input) for e in errors_of(text, bare)] == [("sampler", "cfg")]
    else:
        with pytest.raises(WorkflowFormatError, match="not valid JSON: Exceeds the limit"):
            load_workflow(text)


@pytest.mark.parametrize("node_id", ["²", "①", "٣", "10", "2"])
def test_digit_like_node_ids(bare, node_id):
    doc = txt2img(ckpt=SHIPPED)
    nodes = doc["nodes"]
    nodes[node_id] = nodes.pop("latent")
    nodes["sampler"]["inputs"]["latent_image"] = {"node": node_id, "output": "LATENT"}
    plan, errors = validate(doc, bare)
    assert errors == [] and node_id in plan.order()
    assert _natural("2") < _natural("10") < _natural("²") and _natural("①") != _natural("1")
    assert Executor(bare).keys(doc)[node_id]


def test_deep_json_is_a_format_error(bare):
    for depth in (65, 1000, 100_000):
        with pytest.raises(WorkflowFormatError, match="nested more than 64 levels"):
            load_workflow('{"format": "latentgraph", "version": 2, "nodes": {"a": ' + "[" * depth + "]" * depth + "}}")
    value: object = 1
    for _ in range(1000):
        value = [value]
    doc = txt2img(ckpt=SHIPPED)
    doc["nodes"]["pos"]["inputs"]["text"] = value
    with pytest.raises(WorkflowFormatError, match="nested more than 64 levels deep .under nodes/pos/inputs/text"):
        load_workflow(doc)
    with pytest.raises(WorkflowFormatError):
        Executor(bare).run(doc)
    # Structures that refer to themselves are refused too (they are not JSON).
    loop: dict = {"format": "latentgraph", "version": 2, "nodes": {}}
    loop["nodes"]["self"] = loop
    with pytest.raises(WorkflowFormatError, match="nested more than 64"):
        load_workflow(loop)
    # ... and shared parts are fine, as JSON would have copied them.
    shared = txt2img(ckpt=SHIPPED)
    shared["nodes"]["neg"]["inputs"]["clip"] = shared["nodes"]["pos"]["inputs"]["clip"]
    assert errors_of(shared, bare) == []


def test_python_api_refuses_bad_ids_with_documented_errors(bare):
    assert latentgraph.WorkflowFormatError is WorkflowFormatError and issubclass(WorkflowFormatError, ValueError)
    for node_id in (5, None, "", 2.5, ("a",)):
        doc = txt2img(ckpt=SHIPPED)
        doc["nodes"][node_id] = doc["nodes"].pop("save")
        with pytest.raises(WorkflowFormatError, match="node ids must be non-empty strings"):
            load_workflow(doc)
        with pytest.raises(WorkflowFormatError):
            Executor(bare).run(doc)
        assert [e.kind for e in validate(doc, bare)[1]][:1] == ["bad_format"]  # validate alone: an error too
    wf = Workflow()
    for bad in (None, "", 5):
        with pytest.raises(WorkflowFormatError, match="node type must be"):
            wf.add(bad)
        with pytest.raises(WorkflowFormatError, match="node id must be"):
            wf.add("LatentFlip", bad if bad is not None else 7)
    wf.add("EmptyLatentImage", "x")
    with pytest.raises(WorkflowFormatError, match="already in this workflow"):
        wf.add("EmptyLatentImage", "x")
    for source in (None, 5, object()):
        with pytest.raises(WorkflowFormatError):
            load_workflow(source)
    # Workflow(doc) copies: adding nodes leaves the caller's dict as it was.
    doc = txt2img(ckpt=SHIPPED)
    Workflow(doc).add("LatentFlip")
    assert doc == txt2img(ckpt=SHIPPED)


def test_v1_upgrade_of_malformed_fields(bare):
    def v1(**nodes):
        return {"format": "latentgraph", "version": 1, "nodes": nodes}

    cases = [
        v1(a={"type": {"x": 1}, "inputs": {"x": ["b", 0]}}, b={"type": ["y"]}),  # types that are not strings
        v1(a={"type": "SaveImage", "inputs": [None]}),
        v1(a={"type": "SaveImage", "inputs": {"images": [["b"], 0]}}, b={"type": "VAEDecode"}),
        v1(a={"type": "SaveImage", "inputs": {"images": ["b", True]}}),
        v1(a=None, b="text", c=[1, 2]),
        {"format": "latentgraph", "version": 1, "nodes": [1, 2]},
    ]
    for doc in cases:
        original = copy.deepcopy(doc)
        errors = errors_of(doc, bare)
        assert errors and all(e.message for e in errors)
        assert doc == original  # the upgrade builds new objects
    errors = errors_of(cases[0], bare)
    assert ("a", "bad_format") in {(e.node_id, e.kind) for e in errors}


API_CASES = {
    "inputs [null]": ({"1": {"class_type": "SaveImage", "inputs": [None]}}, "'1': 'inputs' must be an object"),
    "_meta a string": ({"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}}, "'1': '_meta' must be"),
    "class_type an object": ({"1": {"class_type": {"a": 1}}}, "'1': 'class_type' must be a string"),
    "empty id": ({"": {"class_type": "SaveImage"}}, "node ids must be non-empty"),
}
UI_NODE = {"id": 1, "type": "SaveImage", "inputs": [{"name": "images", "link": 1}]}
UI_CASES = {
    "inputs [null]": ([{"id": 1, "type": "SaveImage", "inputs": [None]}], [], "'1': 'inputs' must be a list"),
    "link id a list": ([{**UI_NODE, "inputs": [{"name": "images", "link": [1]}]}], [[1, 2, 0, 1, 0, "IMAGE"]],
                       "'1': input 'images': 'link' must be a link id"),
    "outputs holding a list": ([UI_NODE, {"id": 2, "type": "VAEDecode", "outputs": [[1]]}],
                               [[1, 2, 0, 1, 0, "IMAGE"]], "'2': 'outputs' must be a list of objects"),
    "type an object": ([{"id": 1, "type": {"a": 1}}], [], "'1': 'type' must be a string"),
    "a node that is a number": ([5], [], r"nodes\[0\] must be an object"),
    "links holding a string": ([UI_NODE], ["x"], r"links\[0\] must be"),
    "a link from a list": ([UI_NODE], [[1, [2], 0, 1, 0, "IMAGE"]], r"links\[0\]: its id and origin"),
    "two nodes with one id": ([UI_NODE, UI_NODE], [], "'1': two nodes have this id"),
    "widgets_values a string": ([{**UI_NODE, "widgets_values": "abc"}], [], "'1': 'widgets_values' must be a list"),
    "a primitive's values an object": ([UI_NODE, {"id": 2, "type": "PrimitiveNode", "widgets_values": {"a": 1}}],
                                       [[1, 2, 0, 1, 0, "IMAGE"]], "'2': a PrimitiveNode's 'widgets_values'"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_comfyui_api_malformed_fields_name_the_node(case):
    doc, message = API_CASES[case]
    with pytest.raises(WorkflowFormatError, match=message):
        load_workflow(doc)


@pytest.mark.parametrize("case", sorted(UI_CASES))
def test_comfyui_ui_malformed_fields_name_the_node(case):
    nodes, links, message = UI_CASES[case]
    with pytest.raises(WorkflowFormatError, match=message):
        load_workflow({"nodes": copy.deepcopy(nodes), "links": copy.deepcopy(links)})


def test_comfyui_editor_only_garbage_is_left_out():
    doc = json.loads((ROOT / "tests/data/comfyui/txt2img_ui.json").read_text())
    doc["extra"] = {"ds": {"offset": ["a", None], "scale": "big"}}
    doc["nodes"][0].update(pos="here", size=[float("nan"), 1], mode=[4], title=["x"])
    converted = load_workflow(doc)
    first = converted["nodes"][str(doc["nodes"][0]["id"])]
    assert "ui" not in converted and "mode" not in first and "position" not in first.get("ui", {})


def test_huge_integer_positions_in_a_comfyui_editor_file_are_left_out():
    """Found by the long fuzz run: a 400-digit node position raised OverflowError (float conversion)."""
    doc = json.loads((ROOT / "tests/data/comfyui/txt2img_ui.json").read_text())
    kept = load_workflow(doc)["nodes"]
    first, second = [node for node in doc["nodes"] if str(node["id"]) in kept][:2]
    assert "position" in kept[str(first["id"])]["ui"] and "size" in kept[str(second["id"])]["ui"]
    huge = 10 ** 400
    first["pos"] = [huge, 0]
    second["size"] = {"0": -huge, "1": 5}
    doc.setdefault("extra", {})["ds"] = {"scale": huge, "offset": [huge, 1]}
    loaded = load_workflow(doc)
    assert "position" not in loaded["nodes"][str(first["id"])].get("ui", {})
    assert "size" not in loaded["nodes"][str(second["id"])].get("ui", {})
    assert load_workflow(json.loads(json.dumps(loaded))) == loaded  # what it returns loads again as it is


def test_found_by_fuzzing(bare, monkeypatch):
    """Shapes the fuzz test found after the subgraph format arrived (tests/test_fuzz_workflows.py)."""
    # A sampler whose sampler_name comes from a node with its own error: no cross-input check on a
    # value that is not known (it raised KeyError).
    doc = txt2img(ckpt=SHIPPED)
    doc["nodes"]["ckpt"]["mode"] = ""
    doc["nodes"]["sampler"]["inputs"]["sampler_name"] = {"node": "ckpt", "output": "MODEL"}
    assert [(e.node_id, e.kind) for e in errors_of(doc, bare)] == [("ckpt", "bad_format")]
    # A node declaration whose check raises (a node pack's bug) is reported on the node.
    from latentgraph.nodes import registry
    from latentgraph.nodes.spec import REGISTRY

    registry()
    broken = dataclasses.replace(REGISTRY["KSampler"], check=lambda values: 1 / 0)
    monkeypatch.setitem(REGISTRY, "KSampler", broken)
    errors = errors_of(txt2img(ckpt=SHIPPED), bare)
    assert [(e.node_id, e.kind) for e in errors] == [("sampler", "bad_value")]
    assert "check failed on these values (ZeroDivisionError" in errors[0].message
    monkeypatch.undo()
    # Subgraph definitions with inputs named by a list, or inner nodes typed by one.
    sub = json.loads((ROOT / "examples/subgraph.json").read_text())
    definition = next(iter(sub["subgraphs"].values()))
    definition["inputs"].append({"name": ["x"], "type": "INT"})
    inner = next(iter(definition["nodes"].values()))
    inner["type"] = ["KSampler"]
    errors = errors_of(sub, bare)
    assert errors and {e.kind for e in errors} <= {"bad_format", "unknown_type", "missing_input"}
    # ComfyUI subgraph definitions with malformed inputs, outputs or link ids.
    comfy = json.loads((ROOT / "tests/data/comfyui/subgraph_ui.json").read_text())
    for field, value, message in (("inputs", [{"name": ["x"]}], "needs a 'name' and a 'type'"),
                                  ("outputs", "IMAGE", "'outputs' must be a list of objects"),
                                  ("outputs", [{"name": "IMAGE", "type": "IMAGE", "linkIds": [[19]]}], "linkIds")):
        broken_doc = copy.deepcopy(comfy)
        broken_doc["definitions"]["subgraphs"][0][field] = value
        with pytest.raises(WorkflowFormatError, match=message):
            load_workflow(broken_doc)
    broken_doc = copy.deepcopy(comfy)
    broken_doc["definitions"] = ["not", "an", "object"]
    load_workflow(broken_doc)  # no definitions: its instances are unknown node types, for validation to name
    # An empty string is neither JSON nor a path.
    with pytest.raises(WorkflowFormatError, match="empty string"):
        load_workflow("")


# --- the CLI -------------------------------------------------------------------------------------

HOSTILE = {
    "deep.json": '{"format": "latentgraph", "version": 2, "nodes": ' + "[" * 5000 + "]" * 5000 + "}",
    "meta.json": json.dumps({"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}}),
    "bigfloat.json": json.dumps(txt2img(ckpt=SHIPPED)).replace('"cfg": 6.0', '"cfg": ' + "9" * 400),
    "binary.json": "\udcff",
}


def write_hostile(folder: Path) -> list[str]:
    paths = []
    for name, text in HOSTILE.items():
        path = folder / name
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("command", ["validate", "run"])
def test_cli_exits_3_naming_the_problem(bare, tmp_path, capsys, command):
    paths = write_hostile(tmp_path)
    folders_args = ["--models", str(bare.models), "--input", str(bare.input)]
    if command == "run":
        folders_args += ["--out", str(bare.output), "--quiet"]
    assert main([command, *paths, *folders_args]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "deep.json: " in err and "nested more than 64 levels" in err
    assert "meta.json: " in err and "ComfyUI node '1': '_meta' must be an object" in err
    assert "KSampler 'sampler', input 'cfg': expects a finite number, got a 400-digit number" in err
    assert "binary.json: " in err and "not UTF-8" in err


def test_cli_in_a_real_process_exits_3(tmp_path):
    """The installed command, in its own process (the others call main() in this one)."""
    paths = write_hostile(tmp_path)
    done = subprocess.run([sys.executable, "-m", "latentgraph", "validate", *paths, "--models", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.count("problem(s)") == len(HOSTILE)


def test_import_lists_unknown_node_types_and_refuses_unless_allowed(tmp_path, capsys):
    doc = json.loads((ROOT / "tests/data/comfyui/txt2img_api.json").read_text())
    doc["20"] = {"class_type": "FreeU_V2", "inputs": {"model": ["4", 0]}}
    doc["21"] = {"class_type": "UltimateSDUpscale", "inputs": {}}
    doc["22"] = {"class_type": "FreeU_V2", "inputs": {}}
    source, out = tmp_path / "comfy.json", tmp_path / "ours.json"
    source.write_text(json.dumps(doc))
    assert main(["import", str(source), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "2 node type(s) this latentgraph lacks" in err
    assert "FreeU_V2 (node '20', '22')" in err and "UltimateSDUpscale (node '21')" in err
    assert "--allow-unknown" in err and not out.exists()
    assert main(["import", str(source), "-o", str(out), "--allow-unknown"]) == 0
    assert "FreeU_V2" in capsys.readouterr().err
    assert json.loads(out.read_text())["nodes"]["20"]["type"] == "FreeU_V2"
    source.write_text("[" * 3000)
    assert main(["import", str(source)]) == 3
    assert "nested more than 64" in capsys.readouterr().err


def test_cli_piped_into_head_ends_quietly(monkeypatch, capsys):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["nodes"]) == 141
    assert capsys.readouterr().err == ""


def test_cli_piped_into_head_in_a_real_process():
    shell = subprocess.run(f"'{sys.executable}' -m latentgraph nodes --json | head -c 10", shell=True,
                           capture_output=True, text=True, timeout=300)
    assert shell.stdout == '{\n  "versi' and shell.stderr == ""


# --- HTTP ----------------------------------------------------------------------------------------

@pytest_asyncio.fixture
async def client(aiohttp_client, bare, tmp_path):
    return await aiohttp_client(create_app(bare, history_path=tmp_path / "h.sqlite3", library_folder=tmp_path / "lib",
                                           max_upload_pixels=4_000_000))


@pytest.mark.asyncio
async def test_http_refuses_hostile_workflows_with_400_json(client):
    for body in (b'{"workflow": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"workflow": ' + b"1" * 5000 + b"}"):
        for path in ("/api/validate", "/api/queue"):
            response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert response.status == 400 and "not JSON we accept" in (await response.json())["error"]
    meta = {"1": {"class_type": "SaveImage", "inputs": {}, "_meta": "x"}}
    for workflow, where in ((ring(26), ("0", None, "cycle")), (meta, (None, None, "bad_format")),
                            (json.loads(HOSTILE["bigfloat.json"]), ("sampler", "cfg", "bad_value"))):
        started = time.perf_counter()
        answer = await (await client.post("/api/validate", json={"workflow": workflow})).json()
        assert time.perf_counter() - started < 30  # a hang guard; the ring took 27 s and 80 MB
        assert [(e["node_id"], e["input"], e["kind"]) for e in answer["errors"]] == [where]
        response = await client.post("/api/queue", json={"workflow": workflow})
        assert response.status == 400 and (await response.json())["errors"]
    response = await client.put("/api/workflows/deep", data=b"[" * 100 + b"]" * 100)
    assert response.status == 400


@pytest.mark.asyncio
async def test_a_bug_is_a_500_json_answer_and_the_server_goes_on(client, monkeypatch):
    from latentgraph.server import api

    monkeypatch.setattr(api, "load_workflow", lambda *args: 1 / 0)
    answer = await (await client.post("/api/validate", json={"workflow": {"nodes": {}}})).json()
    assert "internal error while reading the workflow (ZeroDivisionError)" in answer["errors"][0]["message"]
    monkeypatch.setattr(api, "catalog", lambda *args: 1 / 0)
    response = await client.get("/api/nodes")
    assert response.status == 500 and "ZeroDivisionError" in (await response.json())["error"]
    assert (await client.get("/api/queue")).status == 200


def encoded(picture: Image.Image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=kind, **options)
    return buffer.getvalue()


def upload_form(data: bytes, name: str = "x.png") -> FormData:
    form = FormData()
    form.add_field("image", data, filename=name, content_type="application/octet-stream")
    return form


@pytest.mark.asyncio
async def test_uploads_over_the_pixel_budget_are_refused_before_decoding(client, bare, monkeypatch):
    bomb = encoded(Image.new("L", (3000, 3000)), "PNG")  # 9 megapixels in a few kilobytes
    assert len(bomb) < 50_000
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self) or None)
    response = await client.post("/api/upload", data=upload_form(bomb))
    assert response.status == 400
    assert "3000 x 3000 pixels (9.0 megapixels), over this server's limit of 4 megapixels" in (
        await response.json())["error"]
    assert decoded == [] and list(bare.input.iterdir()) == []


@pytest.mark.asyncio
async def test_concurrent_decodes_are_bounded(client, monkeypatch):
    running, most, lock = [0], [0], threading.Lock()
    real = files.reencoded

    def slow(data, max_pixels):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return real(data, max_pixels)

    monkeypatch.setattr(files, "reencoded", slow)
    picture = encoded(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG")
    answers = await asyncio.gather(*(client.post("/api/upload", data=upload_form(picture)) for _ in range(6)))
    assert [a.status for a in answers] == [200] * 6
    assert most[0] == files.CONCURRENT_DECODES


@pytest.mark.asyncio
async def test_uploads_are_stored_re_encoded_and_served_without_sniffing(client, bare):
    html = b"<html><script>alert(document.cookie)</script></html>"
    rgba = Image.new("RGBA", (16, 12), (200, 30, 30, 255))
    rgba.putpixel((3, 3), (0, 0, 0, 0))
    polyglot_png = encoded(rgba, "PNG") + html  # a PNG that is also an HTML page
    gif = encoded(Image.new("P", (8, 8)), "GIF", comment=html)
    photo = Image.new("RGB", (20, 10), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: LoadImage turns it upright
    exif[0x010F] = "<script>maker</script>"
    jpeg = encoded(photo, "JPEG", quality=90, exif=exif.tobytes())
    for data, name, stored_as in ((polyglot_png, "page.html.png", ".png"), (gif, "anim.gif", ".png"),
                                  (jpeg, "photo.jpg", ".jpg")):
        response = await client.post("/api/upload", data=upload_form(data, name))
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["name"].endswith(stored_as)
        stored = (bare.input / answer["name"]).read_bytes()
        assert stored != data and b"<script" not in stored and b"<html" not in stored
        served = await client.get(answer["url"])
        assert served.status == 200 and await served.read() == stored
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in served.headers["Content-Security-Policy"]
        assert "sandbox" in served.headers["Content-Security-Policy"]
    png_name = sorted(p.name for p in bare.input.iterdir() if p.name.startswith("page"))[0]
    with Image.open(bare.input / png_name) as kept:  # the alpha LoadImage's mask needs
        assert kept.mode == "RGBA" and kept.getpixel((3, 3))[3] == 0 and kept.getpixel((4, 4)) == (200, 30, 30, 255)
    jpg_name = sorted(p.name for p in bare.input.iterdir() if p.suffix == ".jpg")[0]
    with Image.open(bare.input / jpg_name) as kept:
        assert kept.format == "JPEG" and kept.getexif().get(0x0112) == 6 and 0x010F not in kept.getexif()
    # Every answer forbids sniffing; only the editor's page is not put under the no-script policy
    # (ComfyUI's routes and its /view of the same file are).
    for path in ("/api/queue", "/api/nowhere", "/", "/nowhere.js", "/queue", "/api/object_info/KSampler",
                 f"/view?filename={png_name}&type=input"):
        response = await client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert ("Content-Security-Policy" in response.headers) == (path != "/"), path


@pytest.mark.asyncio
async def test_import_of_a_png_bomb_reads_no_pixels(client, monkeypatch):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("workflow", json.dumps(txt2img(ckpt=SHIPPED)))
    picture = encoded(Image.new("L", (4000, 4000)), "PNG", pnginfo=info)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self))
    form = FormData()
    form.add_field("file", picture, filename="w.png", content_type="image/png")
    response = await client.post("/api/import", data=form)
    assert response.status == 200 and (await response.json())["workflow"]["nodes"]["sampler"]
    assert decoded == []


def test_gc_pause_nests_and_restores():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_limits_check_walks_without_recursion():
    value: object = "leaf"
    for _ in range(100_000):
        value = {"x": value}
    with pytest.raises(WorkflowFormatError, match="nested more than 64 levels deep"):
        limits.check(value)
    assert limits.check({"a": [[1]]}, Limits(max_depth=3))
    with pytest.raises(WorkflowFormatError):
        limits.check({"a": [[1]]}, Limits(max_depth=2))
