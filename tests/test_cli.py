"""The `latentgraph` command end to end, as a user runs it, on the example workflows and the
shipped tiny-shapes model."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from latentgraph.graph.png_metadata import workflow_from_png
from latentgraph.graph.workflow import load_workflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CLI = shutil.which("latentgraph") or ""


def cli(*args, cwd) -> subprocess.CompletedProcess:
    # An empty models folder (the shipped model only), and the thread count the in-process tests use.
    env = dict(os.environ, LATENTGRAPH_MODELS=str(cwd / "models"), OMP_NUM_THREADS="2")
    return subprocess.run([CLI or sys.executable, *([] if CLI else ["-m", "latentgraph"]), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_run_txt2img_example_writes_a_png_that_reopens_as_its_workflow(tmp_path):
    done = cli("run", EXAMPLES / "txt2img.json", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in pngs] == ["txt2img_00001_.png"]
    assert str(pngs[0].relative_to(tmp_path)) in done.stdout
    assert load_workflow(workflow_from_png(pngs[0])) == load_workflow(EXAMPLES / "txt2img.json")


def test_set_overrides_inputs_and_is_recorded_in_the_png(tmp_path):
    done = cli("run", EXAMPLES / "txt2img.json", "--set", "sampler.seed=7", "--set",
                       "sampler.sampler_name=dpmpp_2m", "--set", "Positive prompt.text=a small red square",
                       "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (png,) = (tmp_path / "out").glob("*.png")
    embedded = workflow_from_png(png)["nodes"]
    assert embedded["sampler"]["inputs"]["seed"] == 7
    assert embedded["sampler"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert embedded["positive"]["inputs"]["text"] == "a small red square"


def test_several_workflows_share_one_cache_and_report(tmp_path):
    report = tmp_path / "report.json"
    done = cli("run", EXAMPLES / "txt2img.json", EXAMPLES / "img2img.json", EXAMPLES / "hires_fix.json",
                       "--input", EXAMPLES / "input", "--out", "out", "--report", report, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = json.loads(report.read_text())["runs"]
    assert [r["status"] for r in runs] == ["success"] * 3
    status = [{n["node_id"]: n["status"] for n in r["nodes"]} for r in runs]
    assert status[0]["ckpt"] == "executed"
    assert status[1]["ckpt"] == "cached" and status[1]["negative"] == "cached"  # same model, same empty prompt
    assert status[2]["ckpt"] == "cached"
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == ["hires_00001_.png", "hires_00002_.png", "img2img_00001_.png", "txt2img_00001_.png"]
    assert len(list((tmp_path / "temp").glob("*.png"))) == 2  # the hires example's previews


def test_invalid_workflow_exits_non_zero_naming_node_and_input_and_runs_nothing(tmp_path):
    bad = json.loads((EXAMPLES / "txt2img.json").read_text())
    bad["nodes"]["sampler"]["inputs"]["steps"] = 0
    bad["nodes"]["decode"]["inputs"]["vae"] = {"node": "ckpt", "output": "CLIP"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    done = cli("run", "bad.json", "--out", "out", cwd=tmp_path)
    assert done.returncode == 3
    assert "KSampler 'sampler', input 'steps': 0 is below the minimum 1" in done.stderr
    assert "VAEDecode 'decode', input 'vae': expects VAE" in done.stderr
    assert not (tmp_path / "out").exists()


def test_bad_override_is_reported(tmp_path):
    done = cli("run", EXAMPLES / "txt2img.json", "--set", "nosuchnode.seed=1", cwd=tmp_path)
    assert done.returncode == 2 and "nosuchnode" in done.stderr
    # ... with the ids and titles it could have named
    assert "has the nodes: ckpt, positive ('Positive prompt'), negative ('Negative prompt'), latent" in done.stderr
    done = cli("run", EXAMPLES / "txt2img.json", "--set", "sampler.steps=many", cwd=tmp_path)
    assert done.returncode == 3 and "'many' is not a valid INT" in done.stderr


def test_validate_command(tmp_path):
    done = cli("validate", EXAMPLES / "txt2img.json", cwd=tmp_path)
    assert done.returncode == 0 and "valid" in done.stdout
    done = cli("validate", EXAMPLES / "txt2img.json", "--set", "sampler.cfg=500", cwd=tmp_path)
    assert done.returncode == 3 and "input 'cfg'" in done.stderr


def test_nodes_json_catalog(tmp_path):
    done = cli("nodes", "--json", cwd=tmp_path)
    assert done.returncode == 0
    catalog = json.loads(done.stdout)
    nodes = catalog["nodes"]
    for name in ("CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode",
                 "VAEEncode", "LoadImage", "SaveImage", "PreviewImage", "ImageSharpen", "ImageScale",
                 "ImageScaleBy", "LatentUpscaleBy"):
        assert name in nodes
    ksampler = {i["name"]: i for i in nodes["KSampler"]["inputs"]}
    assert ksampler["steps"]["min"] == 1 and ksampler["seed"]["control_after_generate"]
    assert "dpmpp_2m" in ksampler["sampler_name"]["choices"] and "karras" in ksampler["scheduler"]["choices"]
    assert "tiny-shapes" in {i["name"]: i for i in nodes["CheckpointLoaderSimple"]["inputs"]}["ckpt_name"]["choices"]
    assert nodes["SaveImage"]["output_node"] and nodes["KSampler"]["outputs"] == [{"name": "LATENT", "type": "LATENT"}]
    listing = cli("nodes", cwd=tmp_path)
    assert "KSampler(" in listing.stdout


def test_help_explains_every_option(tmp_path):
    done = cli("run", "--help", cwd=tmp_path)
    for option in ("--set", "--out", "--input", "--models", "--device", "--cache-budget", "--report"):
        assert option in done.stdout


def test_python_api_builds_and_runs_the_same_graph(tmp_path):
    from helpers import read_png

    import latentgraph

    wf = latentgraph.Workflow()
    ckpt = wf.add("CheckpointLoaderSimple", "ckpt", ckpt_name="tiny-shapes")
    pos = wf.add("CLIPTextEncode", "positive", text="a large red circle on a blue background, at the left",
                 clip=ckpt.CLIP)
    neg = wf.add("CLIPTextEncode", "negative", text="", clip=ckpt.CLIP)
    latent = wf.add("EmptyLatentImage", "latent", width=64, height=64, batch_size=1)
    sampler = wf.add("KSampler", "sampler", model=ckpt.MODEL, positive=pos.CONDITIONING, negative=neg.CONDITIONING,
                     latent_image=latent.LATENT, seed=42, steps=20, cfg=6.0, sampler_name="euler", scheduler="normal")
    decode = wf.add("VAEDecode", "decode", samples=sampler.LATENT, vae=ckpt.VAE)
    sharpen = wf.add("ImageSharpen", "sharpen", image=decode.IMAGE, sharpen_radius=1, sigma=1.0, alpha=0.5)
    wf.add("SaveImage", "save", images=sharpen.IMAGE, filename_prefix="txt2img")
    result = latentgraph.run(wf, models=tmp_path / "models", output=tmp_path / "api", device="cpu")
    ours = read_png(result.images[0]["path"])
    done = cli("run", EXAMPLES / "txt2img.json", "--out", "cli", cwd=tmp_path)
    assert done.returncode == 0
    assert (ours == read_png(next((tmp_path / "cli").glob("*.png")))).all()


@pytest.mark.parametrize("name", ["txt2img", "img2img", "hires_fix", "inpaint", "subgraph"])
def test_examples_validate(name, tmp_path):
    done = cli("validate", EXAMPLES / f"{name}.json", "--input", EXAMPLES / "input", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def test_node_reference_doc_is_generated_from_the_declarations():
    from latentgraph.cli import markdown_reference
    from latentgraph.nodes import registry

    assert (ROOT / "docs" / "nodes.md").read_text() == markdown_reference(registry()), \
        "docs/nodes.md is stale: run `latentgraph nodes --markdown > docs/nodes.md`"
