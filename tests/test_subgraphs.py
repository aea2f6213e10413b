"""Subgraphs in the engine (workflow version 3): expanded before validation, so a workflow with
subgraphs gives the image and the cache keys of the same graph written out flat, errors name inner
nodes by their path, and editing a Subgraph node's input re-runs only what it changes. On the
shipped tiny-shapes model at 64 px with 3 steps."""
from __future__ import annotations

import copy
import json

import pytest
from helpers import read_png, shipped_model_executor

from latentgraph.graph.errors import GraphError
from latentgraph.graph.subgraphs import MAX_DEPTH, MAX_NODES, component_problems, expand
from latentgraph.graph.validate import validate
from latentgraph.graph.workflow import Workflow, load_workflow


def ref(node, output):
    return {"node": node, "output": output}


def given(name):
    return {"subgraph_input": name}


def upscale() -> dict:
    return {"name": "Upscale and sharpen",
            "inputs": [{"name": "image", "type": "IMAGE"}, {"name": "scale_by", "type": "FLOAT", "default": 2.0}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "from": ref("2", "IMAGE")}],
            "nodes": {"1": {"type": "ImageScaleBy", "title": "Scale", "inputs": {
                          "image": given("image"), "scale_by": given("scale_by"), "upscale_method": "bicubic"}},
                      "2": {"type": "ImageSharpen", "inputs": {"image": ref("1", "IMAGE"), "sharpen_radius": 1,
                                                               "sigma": 1.0, "alpha": 0.5}}}}


def generate() -> dict:
    return {"name": "Generate",
            "inputs": [{"name": "model", "type": "MODEL"}, {"name": "clip", "type": "CLIP"},
                       {"name": "vae", "type": "VAE"}, {"name": "text", "type": "STRING", "default": "a red circle"},
                       {"name": "seed", "type": "INT", "default": 1}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "from": ref("decode", "IMAGE")}],
            "nodes": {
                "pos": {"type": "CLIPTextEncode", "inputs": {"text": given("text"), "clip": given("clip")}},
                "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": given("clip")}},
                "latent": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
                "sampler": {"type": "KSampler", "inputs": {
                    "model": given("model"), "positive": ref("pos", "CONDITIONING"),
                    "negative": ref("neg", "CONDITIONING"), "latent_image": ref("latent", "LATENT"),
                    "seed": given("seed"), "steps": 3, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
                    "denoise": 1.0}},
                "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": given("vae")}},
            },
            "ui": {"viewport": {"x": 0, "y": 0, "zoom": 1}}}


def pipeline() -> dict:
    """Generate, then upscale: a subgraph made of two subgraphs."""
    return {"name": "Pipeline",
            "inputs": [{"name": "model", "type": "MODEL"}, {"name": "clip", "type": "CLIP"},
                       {"name": "vae", "type": "VAE"}, {"name": "text", "type": "STRING"},
                       {"name": "scale_by", "type": "FLOAT", "default": 1.5}],
            "outputs": [{"name": "IMAGE", "type": "IMAGE", "from": ref("2", "IMAGE")},
                        {"name": "SMALL", "type": "IMAGE", "from": ref("1", "IMAGE")}],
            "nodes": {"1": {"type": "Subgraph", "subgraph": "generate", "inputs": {
                          "model": given("model"), "clip": given("clip"), "vae": given("vae"),
                          "text": given("text"), "seed": 5}},
                      "2": {"type": "Subgraph", "subgraph": "upscale", "inputs": {
                          "image": ref("1", "IMAGE"), "scale_by": given("scale_by")}}}}


def nested() -> dict:
    return {"format": "latentgraph", "version": 3, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
        "5": {"type": "Subgraph", "subgraph": "pipeline", "title": "Make a picture", "inputs": {
            "model": ref("ckpt", "MODEL"), "clip": ref("ckpt", "CLIP"), "vae": ref("ckpt", "VAE"),
            "text": "a blue square"}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("5", "IMAGE"), "filename_prefix": "sub"}},
    }, "subgraphs": {"pipeline": pipeline(), "generate": generate(), "upscale": upscale()}}


# The same graph written out flat, with other ids: inner path -> flat id.
TWIN = {"ckpt": "ckpt", "5/1/pos": "pos", "5/1/neg": "neg", "5/1/latent": "latent", "5/1/sampler": "sampler",
        "5/1/decode": "decode", "5/2/1": "scale", "5/2/2": "sharpen", "save": "save"}


def flat_twin() -> dict:
    gen, up = generate()["nodes"], upscale()["nodes"]
    nodes = {"ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}}}
    for name in ("pos", "neg", "latent", "sampler", "decode"):
        nodes[name] = copy.deepcopy(gen[name])
    nodes["pos"]["inputs"].update(text="a blue square", clip=ref("ckpt", "CLIP"))
    nodes["neg"]["inputs"]["clip"] = ref("ckpt", "CLIP")
    nodes["sampler"]["inputs"].update(model=ref("ckpt", "MODEL"), seed=5)
    nodes["decode"]["inputs"]["vae"] = ref("ckpt", "VAE")
    nodes["scale"] = {"type": "ImageScaleBy", "inputs": {"image": ref("decode", "IMAGE"), "scale_by": 1.5,
                                                         "upscale_method": "bicubic"}}
    nodes["sharpen"] = {"type": "ImageSharpen", "inputs": {**up["2"]["inputs"], "image": ref("scale", "IMAGE")}}
    nodes["save"] = {"type": "SaveImage", "inputs": {"images": ref("sharpen", "IMAGE"), "filename_prefix": "sub"}}
    return {"format": "latentgraph", "version": 3, "nodes": nodes}


@pytest.fixture
def executor(tmp_path):
    (tmp_path / "a").mkdir()
    return shipped_model_executor(tmp_path / "a")


def errors_of(workflow, executor) -> list[GraphError]:
    return validate(load_workflow(workflow), executor.settings)[1]


def only_error(workflow, executor) -> GraphError:
    errors = errors_of(workflow, executor)
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def test_subgraph_gives_the_image_and_the_cache_keys_of_its_flattened_twin(executor, tmp_path):
    keys, twin_keys = executor.keys(nested()), executor.keys(flat_twin())
    assert set(keys) == set(TWIN)
    for path, flat_id in TWIN.items():
        assert keys[path] == twin_keys[flat_id], path

    result = executor.run(nested())
    assert {r.node_id for r in result.report if r.status == "executed"} == set(TWIN)
    (tmp_path / "b").mkdir()
    twin = shipped_model_executor(tmp_path / "b").run(flat_twin())
    ours, theirs = read_png(result.images[0]["path"]), read_png(twin.images[0]["path"])
    assert ours.shape == (96, 96, 3)
    assert (ours == theirs).all()
    # One cache for both: the twin's nodes are the subgraph's.
    again = executor.run(flat_twin())
    assert {r.status for r in again.report} == {"cached"}


def test_editing_a_subgraph_nodes_input_reruns_only_what_it_changes(executor):
    workflow, events = nested(), []
    executor.run(workflow, on_event=events.append)
    # events name inner nodes by their path
    executing = [e["node_id"] for e in events if e["type"] == "executing"]
    assert "ckpt" in executing and "5/1/sampler" in executing and executing[-1] == "save"
    assert {e["node_id"] for e in events if e["type"] == "progress"} == {"5/1/sampler"}
    workflow["nodes"]["5"]["inputs"]["scale_by"] = 1.25
    result = executor.run(workflow)
    assert {r.node_id for r in result.report if r.status == "executed"} == {"5/2/1", "5/2/2", "save"}
    assert {r.node_id for r in result.report if r.status == "cached"} == set(TWIN) - {"5/2/1", "5/2/2", "save"}

    workflow["nodes"]["5"]["inputs"]["text"] = "a green triangle"
    result = executor.run(workflow)
    assert {r.node_id for r in result.report if r.status == "executed"} == {
        "5/1/pos", "5/1/sampler", "5/1/decode", "5/2/1", "5/2/2", "save"}


def test_expanded_nodes_keep_titles_and_ui_and_the_document_keeps_its_subgraphs(executor):
    doc = load_workflow(nested())
    assert doc["version"] == 3 and set(doc["subgraphs"]) == {"pipeline", "generate", "upscale"}
    flat = expand(doc).doc
    assert "subgraphs" not in flat and "5" not in flat["nodes"]
    assert flat["nodes"]["5/2/1"]["title"] == "Scale"
    assert flat["nodes"]["5/2/1"]["inputs"]["image"] == ref("5/1/decode", "IMAGE")
    assert flat["nodes"]["5/1/sampler"]["inputs"]["seed"] == 5
    assert flat["nodes"]["save"]["inputs"]["images"] == ref("5/2/2", "IMAGE")
    # an input left unset takes the definition's default; one no definition sets takes the node's own
    assert flat["nodes"]["5/2/1"]["inputs"]["scale_by"] == 1.5
    assert doc == load_workflow(nested())  # expansion leaves the document as it was


def test_a_broken_inner_node_is_named_by_its_path(executor):
    workflow = nested()
    workflow["subgraphs"]["generate"]["nodes"]["sampler"]["inputs"]["steps"] = 0
    error = only_error(workflow, executor)
    assert (error.kind, error.node_id, error.node_type, error.input) == ("out_of_range", "5/1/sampler", "KSampler",
                                                                         "steps")
    assert error.message == "KSampler '5/1/sampler', input 'steps': 0 is below the minimum 1"

    workflow = nested()
    workflow["subgraphs"]["upscale"]["nodes"]["2"]["type"] = "NoSuchNode"
    error = only_error(workflow, executor)
    assert (error.kind, error.node_id) == ("unknown_type", "5/2/2")


def test_a_bad_value_given_to_a_subgraph_node_is_reported_on_it(executor):
    workflow = nested()
    workflow["nodes"]["5"]["inputs"]["scale_by"] = 100.0  # passes through "5/2" to ImageScaleBy "5/2/1"
    error = only_error(workflow, executor)
    assert (error.kind, error.node_id, error.node_type, error.input) == ("out_of_range", "5", "Subgraph", "scale_by")
    assert error.message.startswith("Subgraph '5', input 'scale_by': 100.0 is above the maximum")
    assert "ImageScaleBy '5/2/1', input 'scale_by'" in error.message


def mutate(change):
    workflow = nested()
    change(workflow["nodes"], workflow["subgraphs"])
    return workflow


CASES = {
    "missing definition": (lambda n, s: n["5"].update(subgraph="nope"),
                           ("unknown_type", "5", None, "uses subgraph 'nope', which this workflow does not define")),
    "unknown input name": (lambda n, s: n["5"]["inputs"].update(colour=3),
                           ("unknown_input", "5", "colour", "subgraph 'pipeline' has no input 'colour'")),
    "definition input of another type than its use": (
        lambda n, s: s["pipeline"]["inputs"][3].update(type="INT"),
        ("type_mismatch", "5", None, "node '5/1', input 'text' expects STRING, but takes input 'text', declared INT")),
    "link of the wrong type": (lambda n, s: n["5"]["inputs"].update(model=ref("ckpt", "CLIP")),
                               ("type_mismatch", "5", "model", "expects MODEL, but is linked to a CLIP output")),
    "missing input without default": (lambda n, s: n["5"]["inputs"].pop("vae"),
                                      ("missing_input", "5", "vae", "(inside: VAEDecode '5/1/decode'")),
    "definition that contains itself": (
        lambda n, s: s["upscale"]["nodes"].update(x={"type": "Subgraph", "subgraph": "pipeline", "mode": "muted"}),
        ("cycle", "5", None, "contains itself")),
    "unknown output": (lambda n, s: n["save"]["inputs"].update(images=ref("5", "LATENT")),
                       ("missing_output", "save", "images", "output 'LATENT' of Subgraph '5', which has outputs: "
                                                            "IMAGE, SMALL")),
    "muted subgraph used": (lambda n, s: n["5"].update(mode="muted"),
                            ("missing_node", "save", "images", "Subgraph '5', which is muted")),
    "output from a node the definition lacks": (
        lambda n, s: s["upscale"]["outputs"][0].update({"from": ref("9", "IMAGE")}),
        ("missing_node", "5/2", None, "output 'IMAGE' comes from node '5/2/9', which it does not have")),
    "id that clashes with an inner path": (lambda n, s: n.update({"5/1": {"type": "PreviewImage", "inputs": {}}}),
                                           ("bad_format", None, None, "also the path of a subgraph's inner node")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_subgraph_errors_name_the_subgraph_node_and_the_inner_path(executor, case):
    change, (kind, node_id, input_name, text) = CASES[case]
    error = only_error(mutate(change), executor)
    assert error.kind == kind and error.input == input_name, error.message
    assert node_id is None or error.node_id == node_id, error.message
    assert text in error.message


def test_nesting_and_size_are_bounded(executor):
    deep = {"format": "latentgraph", "version": 3, "nodes": {"top": {"type": "Subgraph", "subgraph": "d0"}},
            "subgraphs": {}}
    for level in range(MAX_DEPTH + 1):
        deep["subgraphs"][f"d{level}"] = {"inputs": [], "outputs": [], "nodes": {
            "n": {"type": "Subgraph", "subgraph": f"d{level + 1}"} if level < MAX_DEPTH else
            {"type": "PreviewImage", "inputs": {}}}}
    error = only_error(deep, executor)
    assert (error.kind, error.node_id) == ("bad_format", "top") and f"more than {MAX_DEPTH} deep" in error.message
    del deep["subgraphs"][f"d{MAX_DEPTH}"]["nodes"]["n"]  # one level less is fine (but has no output)
    deep["subgraphs"][f"d{MAX_DEPTH - 1}"]["nodes"]["n"] = {"type": "PreviewImage", "inputs": {}}
    assert [e.kind for e in errors_of(deep, executor)] == ["missing_input"]

    # Two of the next at each of 20 levels: a million nodes, refused before anything is copied.
    wide = {"format": "latentgraph", "version": 3, "nodes": {"top": {"type": "Subgraph", "subgraph": "w0"}},
            "subgraphs": {f"w{i}": {"inputs": [], "outputs": [], "nodes": {
                "a": {"type": "Subgraph", "subgraph": f"w{i + 1}"}, "b": {"type": "Subgraph", "subgraph": f"w{i + 1}"}}}
                for i in range(20)}}
    wide["subgraphs"]["w20"] = {"nodes": {"p": {"type": "PreviewImage", "inputs": {}}}}
    error = only_error(wide, executor)
    assert error.kind == "bad_format" and f"at most {MAX_NODES}" in error.message


def test_bypassed_subgraph_passes_its_input_through_and_muted_one_runs_nothing(executor):
    workflow = nested()
    workflow["nodes"]["up"] = {"type": "Subgraph", "subgraph": "upscale", "mode": "bypassed",
                               "inputs": {"image": ref("5", "SMALL")}}
    workflow["nodes"]["save"]["inputs"]["images"] = ref("up", "IMAGE")
    plan, errors = validate(load_workflow(workflow), executor.settings)
    assert errors == [] and plan.nodes["save"].links["images"] == ("5/1/decode", "IMAGE")
    assert not any(n.startswith("up/") or n.startswith("5/2/") for n in plan.nodes)

    workflow["nodes"]["up"]["mode"] = "muted"
    workflow["nodes"]["up"]["subgraph"] = "not even defined"  # a muted node's definition does not matter
    workflow["nodes"]["save"]["inputs"]["images"] = ref("5", "IMAGE")
    assert errors_of(workflow, executor) == []


def test_python_api_builds_subgraphs(executor):
    wf = Workflow()
    ckpt = wf.add("CheckpointLoaderSimple", "ckpt", ckpt_name="tiny-shapes")
    for name, definition in (("generate", generate()), ("pipeline", pipeline())):
        wf.define_subgraph(name, definition=definition)
    sub = wf.define_subgraph("upscale", name="Upscale and sharpen")
    scaled = sub.add("ImageScaleBy", "1", image=sub.input("image", "IMAGE"), upscale_method="bicubic",
                     scale_by=sub.input("scale_by", "FLOAT", default=2.0))
    sub.node("1").set(scale_by=sub.input("scale_by"))
    sharp = sub.add("ImageSharpen", "2", image=scaled.IMAGE, sharpen_radius=1, sigma=1.0, alpha=0.5)
    sub.output("IMAGE", sharp.IMAGE)
    picture = wf.add_subgraph("pipeline", "5", model=ckpt.MODEL, clip=ckpt.CLIP, vae=ckpt.VAE, text="a blue square")
    wf.add("SaveImage", "save", images=picture.IMAGE, filename_prefix="sub")
    assert wf.doc["subgraphs"]["upscale"]["outputs"] == [{"name": "IMAGE", "type": "IMAGE", "from": ref("2", "IMAGE")}]
    assert executor.keys(wf.to_json()) == executor.keys(nested())
    assert Workflow(json.loads(json.dumps(wf.to_json()))).doc["subgraphs"].keys() == wf.doc["subgraphs"].keys()


def test_component_definitions_are_checked_on_their_own():
    assert component_problems("Pipeline", {**pipeline(), "subgraphs": {"generate": generate(),
                                                                       "upscale": upscale()}}) == []
    missing = component_problems("Pipeline", pipeline())
    assert {e.kind for e in missing} == {"unknown_type"} and "'generate'" in missing[0].message
    looping = upscale()
    looping["nodes"]["3"] = {"type": "Subgraph", "subgraph": "Loop"}
    assert [e.kind for e in component_problems("Loop", looping)] == ["cycle"]
    assert component_problems("x", {"nodes": {}, "outputs": [{"name": "A", "type": "IMAGE"}]})[0].kind == "bad_format"
    assert component_problems("x", "nope")[0].kind == "bad_format"


def test_schema_accepts_subgraphs():
    from pathlib import Path

    import jsonschema

    import latentgraph.graph as graph_pkg

    schema = json.loads((Path(graph_pkg.__file__).parent / "workflow.schema.json").read_text())
    jsonschema.validate(nested(), schema)
    bad = nested()
    del bad["nodes"]["5"]["subgraph"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = nested()
    bad["subgraphs"]["upscale"]["outputs"][0].pop("from")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_set_overrides_subgraph_inputs_and_inner_nodes():
    from latentgraph.cli import apply_overrides

    doc = load_workflow(nested())
    problems, absent = apply_overrides(doc, ["5/1/sampler.seed=9", "Scale.upscale_method=bilinear", "5.scale_by=1.25",
                                             "nowhere.seed=1"])
    assert problems == [] and absent == {"nowhere.seed=1"}
    nodes = doc["nodes"]  # flattened, after the Subgraph node's own input was set
    assert nodes["5/2/1"]["inputs"]["scale_by"] == 1.25 and nodes["5/1/sampler"]["inputs"]["seed"] == 9
    assert nodes["5/2/1"]["inputs"]["upscale_method"] == "bilinear"

    doc = load_workflow(nested())
    assert apply_overrides(doc, ["5.scale_by=2", "5.text=hello"]) == ([], set())
    assert doc["nodes"]["5"]["inputs"]["scale_by"] == 2.0 and isinstance(doc["nodes"]["5"]["inputs"]["scale_by"], float)
    assert "subgraphs" in doc  # only outer nodes were set: the document keeps its subgraphs
    problems, _ = apply_overrides(doc, ["5.scale_by=big"])
    assert problems == ["--set 5.scale_by=big: 'big' is not a valid FLOAT for input 'scale_by'"]


def test_cli_names_the_inner_node_and_the_subgraph_node(tmp_path):
    from test_cli import cli

    workflow = nested()
    workflow["subgraphs"]["generate"]["nodes"]["sampler"]["inputs"]["steps"] = 0
    (tmp_path / "models").mkdir()
    (tmp_path / "broken.json").write_text(json.dumps(workflow))
    done = cli("run", "broken.json", "--set", "5.scale_by=100", "--out", "out", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "KSampler '5/1/sampler', input 'steps': 0 is below the minimum 1" in done.stderr
    assert "Subgraph '5', input 'scale_by': 100.0 is above the maximum" in done.stderr
    assert not (tmp_path / "out").exists()


def test_comfyui_workflow_with_subgraphs_converts_and_runs(executor):
    """A ComfyUI editor document (frontend 1.28 shape) whose sampler and decoder sit in a subgraph
    that holds a nested one, with a promoted seed widget and a reroute inside."""
    from pathlib import Path

    document = json.loads((Path(__file__).parent / "data" / "comfyui" / "subgraph_ui.json").read_text())
    sample, sharpen = (d["id"] for d in document["definitions"]["subgraphs"])
    converted = load_workflow(document)
    outer = converted["nodes"]["10"]
    assert (outer["type"], outer["subgraph"], outer["title"]) == ("Subgraph", sample, "Sampler")
    assert outer["inputs"]["seed"] == 7 and outer["ui"]["control_after_generate"] == {"seed": "fixed"}
    definition = converted["subgraphs"][sample]
    assert definition["name"] == "Sample and decode"
    assert definition["outputs"] == [{"name": "IMAGE", "type": "IMAGE", "from": ref("12", "IMAGE")}]
    assert definition["nodes"]["8"]["inputs"]["vae"] == given("vae")  # through the reroute
    assert definition["nodes"]["12"]["subgraph"] == sharpen and definition["nodes"]["12"]["inputs"]["alpha"] == 0.5
    assert converted["subgraphs"][sharpen]["inputs"][1] == {"name": "alpha", "type": "FLOAT", "default": 0.3}

    twin = {"format": "latentgraph", "version": 3, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"), "latent_image": ref("latent", "LATENT"), "seed": 7, "steps": 3,
            "cfg": 6.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "sharpen": {"type": "ImageSharpen", "inputs": {"image": ref("decode", "IMAGE"), "alpha": 0.5}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("sharpen", "IMAGE"), "filename_prefix": "subgraph"}}}}
    keys, twin_keys = executor.keys(converted), executor.keys(twin)
    paths = {"4": "ckpt", "6": "pos", "7": "neg", "5": "latent", "10/3": "sampler", "10/8": "decode",
             "10/12/30": "sharpen", "9": "save"}
    assert {path: keys[path] for path in paths} == {path: twin_keys[flat] for path, flat in paths.items()}
    assert set(keys) == set(paths)

    result = executor.run(converted)
    assert read_png(result.images[0]["path"]).shape == (64, 64, 3)
    assert {r.status for r in executor.run(twin).report} == {"cached"}


def test_malformed_subgraphs_are_errors_not_crashes(executor):
    odd = [
        lambda n, s: s.clear() or s.update(pipeline=[1, 2]),
        lambda n, s: s["pipeline"].update(inputs="x", outputs=[3, {"name": 4}]),
        lambda n, s: s["upscale"]["nodes"].update({"1": [], "2": {"type": "ImageSharpen", "inputs": [1]}}),
        lambda n, s: s["upscale"]["nodes"]["2"]["inputs"].update(image={"node": ["x"], "output": ["y"]}),
        lambda n, s: s["upscale"]["outputs"][0].update({"from": {"subgraph_input": "nope"}}),
        lambda n, s: n["5"].update(inputs=[1], subgraph=["pipeline"]),
        lambda n, s: n["5"].update(mode="sideways"),
        lambda n, s: n.update(x={"type": "PreviewImage", "inputs": {"images": given("image")}}),
        lambda n, s: s["generate"]["nodes"]["sampler"]["inputs"].update(seed=given("seed"), cfg=given("seed")),
        lambda n, s: n["5"]["inputs"].update(model=ref("5", "IMAGE")),  # a loop through the subgraph
    ]
    for change in odd:
        workflow = mutate(change)
        errors = errors_of(workflow, executor)
        assert errors and all(isinstance(e, GraphError) and e.message for e in errors), workflow
    workflow = nested()
    workflow["subgraphs"] = "nothing"
    assert errors_of(workflow, executor)[0].message == "workflow: 'subgraphs' must be an object of id -> definition"
