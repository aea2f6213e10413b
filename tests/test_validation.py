"""Validation: one test per error kind, each checking that the error names node, type and input;
every problem is collected and nothing runs."""
from __future__ import annotations

import copy

import pytest
from helpers import txt2img

from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.validate import validate


def errors_of(workflow, settings):
    plan, errors = validate(workflow, settings)
    assert (plan is None) == bool(errors)
    return errors


def only_error(workflow, settings):
    errors = errors_of(workflow, settings)
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def assert_names(error, kind, node_id, node_type, input_name):
    assert (error.kind, error.node_id, error.node_type, error.input) == (kind, node_id, node_type, input_name)
    assert f"'{node_id}'" in error.message and node_type in error.message
    if input_name:
        assert f"'{input_name}'" in error.message


def test_valid_workflow_has_no_errors(settings):
    assert errors_of(txt2img(), settings) == []


def test_unknown_node_type(settings):
    wf = txt2img()
    wf["nodes"]["x"] = {"type": "FancyUpscaler", "inputs": {}}
    error = only_error(wf, settings)
    assert (error.kind, error.node_id, error.node_type) == ("unknown_type", "x", "FancyUpscaler")
    assert "FancyUpscaler" in error.message and "'x'" in error.message


def test_missing_required_link(settings):
    wf = txt2img()
    del wf["nodes"]["sampler"]["inputs"]["positive"]
    assert_names(only_error(wf, settings), "missing_input", "sampler", "KSampler", "positive")


def test_missing_value_without_default_is_reported_and_defaults_fill_the_rest(settings):
    wf = txt2img()
    del wf["nodes"]["sampler"]["inputs"]["steps"]  # has a default: fine
    del wf["nodes"]["ckpt"]["inputs"]["ckpt_name"]  # has none
    error = only_error(wf, settings)
    assert_names(error, "missing_input", "ckpt", "CheckpointLoaderSimple", "ckpt_name")


def test_unknown_input_name(settings):
    wf = txt2img()
    wf["nodes"]["sampler"]["inputs"]["sed"] = 5
    assert_names(only_error(wf, settings), "unknown_input", "sampler", "KSampler", "sed")


def test_link_to_missing_node(settings):
    wf = txt2img()
    wf["nodes"]["decode"]["inputs"]["vae"] = {"node": "nope", "output": "VAE"}
    error = only_error(wf, settings)
    assert_names(error, "missing_node", "decode", "VAEDecode", "vae")
    assert "'nope'" in error.message


def test_link_to_missing_output(settings):
    wf = txt2img()
    wf["nodes"]["decode"]["inputs"]["vae"] = {"node": "ckpt", "output": "VAE2"}
    error = only_error(wf, settings)
    assert_names(error, "missing_output", "decode", "VAEDecode", "vae")
    assert "MODEL, CLIP, VAE" in error.message


def test_type_mismatch(settings):
    wf = txt2img()
    wf["nodes"]["decode"]["inputs"]["vae"] = {"node": "ckpt", "output": "CLIP"}
    error = only_error(wf, settings)
    assert_names(error, "type_mismatch", "decode", "VAEDecode", "vae")
    assert "expects VAE" in error.message and "CLIP" in error.message


def test_cycle(settings):
    wf = txt2img()
    wf["nodes"]["encode"] = {"type": "VAEEncode", "inputs": {"pixels": {"node": "decode", "output": "IMAGE"},
                                                              "vae": {"node": "ckpt", "output": "VAE"}}}
    wf["nodes"]["sampler"]["inputs"]["latent_image"] = {"node": "encode", "output": "LATENT"}
    errors = errors_of(wf, settings)
    cycle = [e for e in errors if e.kind == "cycle"]
    assert len(cycle) == 1
    assert all(f"'{n}'" in cycle[0].message for n in ("sampler", "decode", "encode"))
    assert cycle[0].node_id in ("sampler", "decode", "encode")


@pytest.mark.parametrize("name,value,text", [("steps", 0, "below the minimum 1"), ("cfg", 101.0, "above the maximum"),
                                             ("denoise", -0.5, "below the minimum")])
def test_value_out_of_range(settings, name, value, text):
    wf = txt2img()
    wf["nodes"]["sampler"]["inputs"][name] = value
    error = only_error(wf, settings)
    assert_names(error, "out_of_range", "sampler", "KSampler", name)
    assert text in error.message


@pytest.mark.parametrize("node,name,value", [("sampler", "steps", "twenty"), ("sampler", "seed", 1.5),
                                             ("pos", "text", 3), ("sampler", "model", 1)])
def test_value_of_wrong_type(settings, node, name, value):
    wf = txt2img()
    wf["nodes"][node]["inputs"][name] = value
    error = only_error(wf, settings)
    assert error.kind == "bad_value" and (error.node_id, error.input) == (node, name)


def test_value_not_among_choices(settings):
    wf = txt2img(sampler_name="euler_b")
    error = only_error(wf, settings)
    assert_names(error, "not_in_choices", "sampler", "KSampler", "sampler_name")
    assert "'euler_b'" in error.message and "dpmpp_2m" in error.message


def test_missing_checkpoint_names_file_and_folders(settings):
    wf = txt2img(ckpt="sd_xl_base_1.0.safetensors")
    error = only_error(wf, settings)
    assert_names(error, "not_in_choices", "ckpt", "CheckpointLoaderSimple", "ckpt_name")
    assert "sd_xl_base_1.0.safetensors" in error.message and str(settings.models) in error.message


def test_missing_input_image_names_the_folder(settings):
    wf = txt2img()
    wf["nodes"]["load"] = {"type": "LoadImage", "inputs": {"image": "nothere.png"}}
    wf["nodes"]["preview"] = {"type": "PreviewImage", "inputs": {"images": {"node": "load", "output": "IMAGE"}}}
    error = only_error(wf, settings)
    assert_names(error, "not_in_choices", "load", "LoadImage", "image")
    assert str(settings.input) in error.message


def test_sampler_and_schedule_diffusers_cannot_express_are_refused_with_reason(settings):
    error = only_error(txt2img(sampler_name="ddim", scheduler="karras"), settings)
    assert_names(error, "unsupported", "sampler", "KSampler", "scheduler")
    assert "DDIMScheduler" in error.message and "use_karras_sigmas" in error.message
    error = only_error(txt2img(scheduler="beta"), settings)
    assert_names(error, "unsupported", "sampler", "KSampler", "scheduler")
    assert "Beta(0.6, 0.6)" in error.message
    error = only_error(txt2img(sampler_name="dpmpp_2s_ancestral"), settings)
    assert error.kind == "unsupported" and error.input == "sampler_name"


def test_pickle_checkpoint_refused(settings, models_dir):
    (models_dir / "old.ckpt").write_bytes(b"not loaded")
    try:
        error = only_error(txt2img(ckpt="old.ckpt"), settings)
    finally:
        (models_dir / "old.ckpt").unlink()
    assert_names(error, "unsupported", "ckpt", "CheckpointLoaderSimple", "ckpt_name")
    assert "safetensors" in error.message


def test_no_output_node(settings):
    wf = txt2img()
    del wf["nodes"]["save"]
    error = only_error(wf, settings)
    assert error.kind == "no_output" and "SaveImage" in error.message


@pytest.mark.parametrize("mutate", [
    lambda wf: wf.update(nodes=[1, 2]),
    lambda wf: wf["nodes"].update(bad="KSampler"),
    lambda wf: wf["nodes"]["sampler"].update(inputs=[1]),
    lambda wf: wf["nodes"]["sampler"]["inputs"].update(model=["ckpt", 0]),
    lambda wf: wf["nodes"]["sampler"].update(mode="sleeping"),
])
def test_wrong_json_shape(settings, mutate):
    wf = txt2img()
    mutate(wf)
    errors = errors_of(wf, settings)
    assert errors and all(e.kind == "bad_format" for e in errors)


def test_every_problem_is_collected_and_nothing_runs(executor, settings):
    wf = txt2img()
    nodes = wf["nodes"]
    nodes["sampler"]["inputs"]["steps"] = 0
    nodes["sampler"]["inputs"]["sampler_name"] = "nope"
    nodes["decode"]["inputs"]["vae"] = {"node": "ckpt", "output": "CLIP"}
    del nodes["pos"]["inputs"]["clip"]
    nodes["x"] = {"type": "Nope"}
    with pytest.raises(WorkflowInvalid) as caught:
        executor.run(wf)
    found = {(e.kind, e.node_id, e.input) for e in caught.value.errors}
    assert found == {("out_of_range", "sampler", "steps"), ("not_in_choices", "sampler", "sampler_name"),
                     ("type_mismatch", "decode", "vae"), ("missing_input", "pos", "clip"),
                     ("unknown_type", "x", None)}
    assert list(settings.output.iterdir()) == []
    assert len(executor.cache.results) == 0 and len(executor.cache.models) == 0


def test_nodes_no_output_needs_are_not_validated_or_run(executor, settings):
    wf = txt2img(steps=2)
    wf["nodes"]["scratch"] = {"type": "KSampler", "inputs": {"steps": 3}}  # unconnected, incomplete
    result = executor.run(wf)
    assert result.status("scratch") is None and result.images


def test_muted_and_bypassed_nodes(executor, settings):
    wf = txt2img(steps=2)
    wf["nodes"]["sharpen"] = {"type": "ImageSharpen", "mode": "bypassed",
                              "inputs": {"image": {"node": "decode", "output": "IMAGE"}}}
    wf["nodes"]["save"]["inputs"]["images"] = {"node": "sharpen", "output": "IMAGE"}
    wf["nodes"]["preview"] = {"type": "PreviewImage", "mode": "muted",
                              "inputs": {"images": {"node": "decode", "output": "IMAGE"}}}
    result = executor.run(wf)
    assert result.status("sharpen") is None and result.status("preview") is None
    assert [i["node_id"] for i in result.images] == ["save"]
    muted = copy.deepcopy(wf)
    muted["nodes"]["decode"]["mode"] = "muted"
    error = only_error(muted, settings)
    assert error.kind == "missing_node" and "muted" in error.message


def test_version_1_links_by_index_are_upgraded(executor):
    from latentgraph.graph.workflow import load_workflow

    wf = txt2img(steps=2)
    wf["version"] = 1
    for node in wf["nodes"].values():
        for name, value in node["inputs"].items():
            if isinstance(value, dict):
                index = {"MODEL": 0, "CLIP": 1, "VAE": 2}.get(value["output"], 0)
                node["inputs"][name] = [value["node"], index]
    upgraded = load_workflow(wf)
    assert upgraded["version"] == 3
    assert upgraded["nodes"]["decode"]["inputs"]["vae"] == {"node": "ckpt", "output": "VAE"}
    assert upgraded["nodes"]["sampler"]["inputs"]["latent_image"] == {"node": "latent", "output": "LATENT"}
    assert upgraded == load_workflow(txt2img(steps=2))


def test_newer_version_is_refused():
    from latentgraph.graph.workflow import WorkflowFormatError, load_workflow

    with pytest.raises(WorkflowFormatError, match="version 99"):
        load_workflow({"format": "latentgraph", "version": 99, "nodes": {}})


def test_schema_file_accepts_examples_and_rejects_bad_shapes():
    import json
    from pathlib import Path

    import jsonschema

    import latentgraph.graph as graph_pkg

    schema = json.loads((Path(graph_pkg.__file__).parent / "workflow.schema.json").read_text())
    for example in sorted((Path(__file__).parent.parent / "examples").glob("*.json")):
        jsonschema.validate(json.loads(example.read_text()), schema)
    jsonschema.validate(txt2img(), schema)
    bad = txt2img()
    bad["nodes"]["decode"]["inputs"]["vae"] = {"node": "ckpt"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_muted_node_of_an_unknown_type_is_ignored(settings):
    wf = txt2img()
    wf["nodes"]["custom"] = {"type": "SomeCustomNode", "mode": "muted", "inputs": {}}
    assert errors_of(wf, settings) == []
    wf["nodes"]["custom"]["mode"] = "bypassed"
    assert only_error(wf, settings).kind == "unknown_type"


def test_loaded_models_are_ordinary_tensors(executor):
    executor.run(txt2img(steps=1))
    ((model, clip, vae),) = executor.loaded_models()
    for module in (model.unet, clip.encoders[0], vae.vae):
        assert not any(p.is_inference() for p in module.parameters())


def test_a_missing_checkpoint_lists_those_there(tmp_path):
    from latentgraph.graph.settings import Settings
    from latentgraph.graph.validate import validate

    settings = Settings(models=tmp_path, input=tmp_path, output=tmp_path, temp=tmp_path)
    (tmp_path / "checkpoints" / "mine.safetensors").parent.mkdir()
    (tmp_path / "checkpoints" / "mine.safetensors").write_bytes(b"")
    workflow = {"format": "latentgraph", "version": 2, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "vae": {"type": "VAELoader", "inputs": {"vae_name": "absent.safetensors"}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": {"node": "latent", "output": "LATENT"},
                                                   "vae": {"node": "vae", "output": "VAE"}}},
        "decode2": {"type": "VAEDecode", "inputs": {"samples": {"node": "latent", "output": "LATENT"},
                                                    "vae": {"node": "ckpt", "output": "VAE"}}},
        "latent": {"type": "EmptyLatentImage", "inputs": {}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "decode", "output": "IMAGE"}}},
        "save2": {"type": "SaveImage", "inputs": {"images": {"node": "decode2", "output": "IMAGE"}}}}}
    errors = {e.node_id: e.message for e in validate(workflow, settings)[1]}
    assert errors["ckpt"].endswith("; available: mine.safetensors, tiny-shapes")
    assert errors["vae"].endswith("not found in " + str(tmp_path / "vae") + "; there are none")
