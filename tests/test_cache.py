"""The executor's cache: exactly the changed part re-runs, keys are content-based and stable,
eviction under a budget never changes images, failures and interrupts keep what was cached."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import read_png, txt2img
from PIL import Image
from safetensors.torch import load_file, save_file

from latentgraph.cli import main as cli_main
from latentgraph.graph.errors import Interrupted, NodeError
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings

ALL = {"ckpt", "pos", "neg", "latent", "sampler", "decode", "sharpen", "save"}


def sharpened(**kwargs):
    wf = txt2img(steps=3, **kwargs)
    wf["nodes"]["sharpen"] = {"type": "ImageSharpen", "inputs": {"image": {"node": "decode", "output": "IMAGE"},
                                                                  "alpha": 0.5}}
    wf["nodes"]["save"]["inputs"]["images"] = {"node": "sharpen", "output": "IMAGE"}
    return wf


def executed(result) -> set[str]:
    return {r.node_id for r in result.report if r.status == "executed"}


def test_cli_report_shows_exactly_the_downstream_part_rerunning(settings, tmp_path):
    first = sharpened(seed=1)
    alpha = copy.deepcopy(first)
    alpha["nodes"]["sharpen"]["inputs"]["alpha"] = 1.5
    seed = copy.deepcopy(alpha)
    seed["nodes"]["sampler"]["inputs"]["seed"] = 2
    sampler = copy.deepcopy(seed)
    sampler["nodes"]["sampler"]["inputs"]["sampler_name"] = "dpmpp_2m"
    paths = []
    for name, wf in [("a", first), ("b", alpha), ("c", seed), ("d", sampler)]:
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(wf))
    report_path = tmp_path / "report.json"
    code = cli_main(["run", *map(str, paths), "--models", str(settings.models), "--out", str(settings.output),
                     "--device", "cpu", "--quiet", "--report", str(report_path)])
    assert code == 0
    runs = json.loads(report_path.read_text())["runs"]
    statuses = [{n["node_id"]: n["status"] for n in run["nodes"]} for run in runs]
    assert all(run["status"] == "success" for run in runs)
    assert {k for k, v in statuses[0].items() if v == "executed"} == ALL
    assert {k for k, v in statuses[1].items() if v == "executed"} == {"sharpen", "save"}
    assert {k for k, v in statuses[2].items() if v == "executed"} == {"sampler", "decode", "sharpen", "save"}
    # Swapping the sampler never reloads the model nor re-encodes the prompts.
    assert {k for k, v in statuses[3].items() if v == "executed"} == {"sampler", "decode", "sharpen", "save"}
    assert all(isinstance(n["seconds"], float) for run in runs for n in run["nodes"])
    assert len(list(settings.output.glob("*.png"))) == 4


def test_identical_subgraphs_share_results_whatever_their_ids(executor):
    wf = sharpened()
    executor.run(wf)
    renamed = {"format": "latentgraph", "version": 2, "nodes": {}}
    mapping = {old: f"n{i}" for i, old in enumerate(wf["nodes"])}
    for old, node in wf["nodes"].items():
        node = copy.deepcopy(node)
        for value in node["inputs"].values():
            if isinstance(value, dict):
                value["node"] = mapping[value["node"]]
        renamed["nodes"][mapping[old]] = node
    assert executed(executor.run(renamed)) == set()


def test_keys_are_stable_across_processes(executor, settings):
    wf = sharpened()
    here = executor.keys(wf)
    script = ("import json, sys; from latentgraph.graph.executor import Executor; "
              "from latentgraph.graph.settings import Settings; "
              "s = Settings(models=sys.argv[1], input=sys.argv[2], device='cpu'); "
              "print(json.dumps(Executor(s).keys(json.loads(sys.argv[3]))))")
    out = subprocess.run([sys.executable, "-c", script, str(settings.models), str(settings.input), json.dumps(wf)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    assert len(set(here.values())) == len(here)


def test_file_inputs_key_on_content(executor, settings):
    Image.new("RGB", (64, 64), (200, 10, 10)).save(settings.input / "in.png")
    wf = {"format": "latentgraph", "version": 2, "nodes": {
        "load": {"type": "LoadImage", "inputs": {"image": "in.png"}},
        "sharp": {"type": "ImageSharpen", "inputs": {"image": {"node": "load", "output": "IMAGE"}}},
        "show": {"type": "PreviewImage", "inputs": {"images": {"node": "sharp", "output": "IMAGE"}}}}}
    assert executed(executor.run(wf)) == {"load", "sharp", "show"}
    Image.new("RGB", (64, 64), (200, 10, 10)).save(settings.input / "in.png")  # same pixels, new mtime
    assert executed(executor.run(wf)) == set()
    Image.new("RGB", (64, 64), (10, 200, 10)).save(settings.input / "in.png")
    assert executed(executor.run(wf)) == {"load", "sharp", "show"}


def test_eviction_under_a_tiny_budget_gives_the_same_images(settings):
    roomy = Executor(settings)
    wf = sharpened(seed=4)
    reference = read_png(roomy.run(wf).images[0]["path"])
    tiny = Executor(Settings(models=settings.models, input=settings.input, output=settings.output,
                             temp=settings.temp, device="cpu", cache_budget=1))
    first, second = tiny.run(wf), tiny.run(wf)
    # Intermediate results do not fit, so everything but the separately accounted model re-runs.
    assert executed(second) == ALL - {"ckpt"}
    assert tiny.cache.results.used <= 1 and len(tiny.cache.models) == 1
    for result in (first, second):
        assert np.array_equal(read_png(result.images[0]["path"]), reference)


def test_least_recently_used_results_go_first(settings):
    wf = sharpened(seed=5)
    probe = Executor(settings)
    probe.run(wf)
    sizes = {key: entry.size for key, entry in probe.cache.results.entries.items()}
    keys = probe.keys(wf)
    # Room for all but the oldest results: the first ones computed are evicted first.
    budget = sum(sizes.values()) - sizes[keys["pos"]] - sizes[keys["neg"]] + 1
    ex = Executor(Settings(models=settings.models, input=settings.input, output=settings.output,
                           temp=settings.temp, device="cpu", cache_budget=budget))
    ex.run(wf)
    assert keys["sampler"] in ex.cache.results and keys["sharpen"] in ex.cache.results
    assert keys["latent"] not in ex.cache.results or keys["pos"] not in ex.cache.results
    assert ex.cache.results.used <= budget


def test_a_failing_node_keeps_earlier_results(executor, settings):
    wf = sharpened(seed=6)
    wf["nodes"]["save"]["inputs"]["filename_prefix"] = "../escape"
    with pytest.raises(NodeError) as caught:
        executor.run(wf)
    error = caught.value.error
    assert (error.node_id, error.node_type, error.input) == ("save", "SaveImage", "filename_prefix")
    assert "'save'" in error.message and "output folder" in error.message
    assert [r.status for r in caught.value.result.report][-1] == "error"
    assert not (settings.output.parent / "escape_00001_.png").exists()
    wf["nodes"]["save"]["inputs"]["filename_prefix"] = "ok"
    assert executed(executor.run(wf)) == {"save"}


def test_interrupt_between_steps_keeps_earlier_results(executor):
    wf = sharpened(seed=7)
    wf["nodes"]["sampler"]["inputs"]["steps"] = 8
    events = []

    def on_event(event):
        events.append(event)
        if event["type"] == "progress" and event["step"] == 2:
            executor.interrupt()

    with pytest.raises(Interrupted):
        executor.run(wf, on_event=on_event)
    progress = [e["step"] for e in events if e["type"] == "progress"]
    assert progress == [1, 2] and events[-1]["type"] == "interrupted"
    result = executor.run(wf)
    assert executed(result) == {"sampler", "decode", "sharpen", "save"}



def test_a_sampler_result_with_nan_is_an_error_on_the_node_not_a_black_picture(settings, models_dir, tmp_path):
    # A copy of the tiny model whose UNet output is NaN (as fp16 overflow or a solver bug gives),
    # in a models folder of its own so that other tests' checkpoint lists stay as they are.
    broken = tmp_path / "models" / "checkpoints" / "tiny-nan"
    shutil.copytree(models_dir / "checkpoints" / "tiny-sd15", broken)
    path = next((broken / "unet").glob("*.safetensors"))
    weights = load_file(path)
    weights["conv_out.bias"] = torch.full_like(weights["conv_out.bias"], float("nan"))
    save_file(weights, path)
    executor = Executor(Settings(models=tmp_path / "models", input=settings.input, output=settings.output,
                                 temp=settings.temp, device="cpu"))
    with pytest.raises(NodeError) as caught:
        executor.run(txt2img("tiny-nan", steps=3))
    error = caught.value.error
    assert (error.node_id, error.node_type, error.input) == ("sampler", "KSampler", "sampler_name")
    assert "NaN" in error.message
    assert not list(settings.output.glob("*.png"))
