"""ComfyUI workflows (API and UI formats) open as they are and give the images of our own format."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import read_png, to_img2img
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sdxl_helpers import REFINER, base_and_refiner, ref, sdxl_models_dir, sdxl_settings, sdxl_txt2img  # noqa: F401

from latentgraph.graph.comfyui import convert
from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.graph.validate import validate
from latentgraph.graph.workflow import detect_format, load_workflow

DATA = Path(__file__).parent / "data" / "comfyui"


def fixture(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def ours_txt2img() -> dict:
    return sdxl_txt2img(seed=3, steps=6, cfg=6.5)


def ours_img2img() -> dict:
    return to_img2img(sdxl_txt2img(negative="blurry", seed=5, steps=10, cfg=7.0, sampler_name="dpmpp_2m",
                                   scheduler="karras"), "start.png", 0.6)


def ours_refiner() -> dict:
    workflow = base_and_refiner(seed=7, steps=10, split=8, size=16)
    nodes = workflow["nodes"]
    nodes["pos"] = {"type": "CLIPTextEncodeSDXL", "inputs": {
        "clip": ref("base", "CLIP"), "width": 48, "height": 40, "crop_w": 0, "crop_h": 0, "target_width": 16,
        "target_height": 16, "text_g": "a large red circle", "text_l": "a red circle"}}
    for name, ascore, text in (("rpos", 6.0, "a large red circle"), ("rneg", 2.5, "")):
        nodes[name] = {"type": "CLIPTextEncodeSDXLRefiner", "inputs": {
            "ascore": ascore, "width": 16, "height": 16, "text": text, "clip": ref("refiner", "CLIP")}}
    return workflow


CASES = {
    "txt2img": ours_txt2img,
    "img2img": ours_img2img,
    "refiner": ours_refiner,
}


def image_of(executor, workflow) -> np.ndarray:
    """The image a workflow saves, computed anew: only loaded models are kept from earlier runs."""
    executor.cache.results.clear()
    result = executor.run(workflow)
    assert not [r for r in result.report if r.status == "cached" and not r.node_type.startswith("Checkpoint")]
    (image,) = result.images
    return read_png(image["path"])


@pytest.fixture
def start_image(sdxl_settings):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(sdxl_settings.input / "start.png")
    return sdxl_settings


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape", ["api", "ui"])
def test_comfyui_workflow_gives_the_image_of_our_format(start_image, case, shape):
    document = fixture(f"{case}_{shape}.json")
    assert detect_format(document) == f"comfyui-{shape}"
    converted = load_workflow(document)
    assert converted["format"] == "latentgraph"
    assert validate(converted, start_image)[1] == []
    executor = Executor(start_image)
    assert np.array_equal(image_of(executor, document), image_of(executor, CASES[case]()))


def test_ui_format_details_are_converted():
    doc = load_workflow(fixture("txt2img_ui.json"))
    nodes = doc["nodes"]
    # The Note, the Reroute and the PrimitiveNode are gone; the reroute's source feeds the sampler.
    assert set(nodes) == {"3", "4", "5", "6", "7", "8", "9", "11", "13"}
    sampler = nodes["3"]
    assert sampler["inputs"]["model"] == {"node": "4", "output": "MODEL"}
    # The primitive's value replaces the converted widget's stale one, and its control is kept.
    assert sampler["inputs"]["seed"] == 3 and sampler["ui"]["control_after_generate"] == {"seed": "fixed"}
    assert {k: sampler["inputs"][k] for k in ("steps", "cfg", "sampler_name", "scheduler", "denoise")} == {
        "steps": 6, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}
    assert nodes["11"]["mode"] == "bypassed" and nodes["13"]["mode"] == "muted"
    assert nodes["6"]["title"] == "Positive" and nodes["6"]["ui"]["position"] == [415, 186]
    assert nodes["3"]["ui"]["size"] == [315, 262]
    assert doc["ui"]["viewport"] == {"x": 96.0, "y": -32.0, "zoom": 0.8}


def test_seed_control_value_is_skipped_in_positional_widgets():
    doc = load_workflow(fixture("refiner_ui.json"))
    base = doc["nodes"]["10"]
    assert base["inputs"]["noise_seed"] == 7 and base["inputs"]["steps"] == 10
    assert base["inputs"]["return_with_leftover_noise"] == "enable"
    assert base["ui"]["control_after_generate"] == {"noise_seed": "fixed"}
    assert doc["nodes"]["6"]["inputs"]["text_l"] == "a red circle"


def test_api_format_editor_only_inputs_are_dropped():
    doc = load_workflow(fixture("img2img_api.json"))
    assert doc["nodes"]["10"]["inputs"] == {"image": "start.png"}
    assert doc["nodes"]["3"]["inputs"]["latent_image"] == {"node": "12", "output": "LATENT"}


def unknown_in_ui() -> dict:
    doc = copy.deepcopy(fixture("txt2img_ui.json"))
    # A FreeU patch between the checkpoint's MODEL and the sampler, and a custom upscaler after the decode.
    doc["nodes"].append({"id": 20, "type": "FreeU_V2", "pos": [300, 500], "mode": 0,
                         "inputs": [{"name": "model", "type": "MODEL", "link": 10}],
                         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [30]}],
                         "widgets_values": [1.3, 1.4, 0.9, 0.2]})
    doc["nodes"].append({"id": 21, "type": "UltimateSDUpscale", "pos": [1300, 600], "mode": 0,
                         "inputs": [{"name": "image", "type": "IMAGE", "link": 31}], "outputs": [],
                         "widgets_values": [2, 7, "fixed", 20]})
    reroute = next(n for n in doc["nodes"] if n["type"] == "Reroute")
    reroute["inputs"][0]["link"] = 30
    doc["links"] += [[30, 20, 0, 10, 0, "MODEL"], [31, 8, 0, 21, 0, "IMAGE"]]
    return doc


def test_unknown_node_types_are_reported_by_name_and_id_before_running(sdxl_settings):
    executor = Executor(sdxl_settings)
    events = []
    with pytest.raises(WorkflowInvalid) as err:
        executor.run(unknown_in_ui(), on_event=events.append)
    unknown = {(e.node_id, e.node_type) for e in err.value.errors if e.kind == "unknown_type"}
    assert unknown == {("20", "FreeU_V2"), ("21", "UltimateSDUpscale")}
    assert any("FreeU_V2" in str(e) and "'20'" in str(e) for e in err.value.errors)
    assert events == [] and executor.loaded_models() == []  # nothing ran

    api = fixture("txt2img_api.json")
    api["10"] = {"class_type": "FreeU_V2", "inputs": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2,
                                                     "model": ["4", 0]}}
    api["3"]["inputs"]["model"] = ["10", 0]
    with pytest.raises(WorkflowInvalid) as err:
        executor.run(api)
    assert [(e.node_id, e.node_type) for e in err.value.errors if e.kind == "unknown_type"] == [("10", "FreeU_V2")]


def test_unknown_node_widgets_are_kept_for_the_editor():
    nodes = load_workflow(unknown_in_ui())["nodes"]
    # Not a new editor's document: no widget names to map onto; the values stay in the node's ui.
    assert nodes["20"]["ui"]["comfyui_widgets_values"] == [1.3, 1.4, 0.9, 0.2]
    assert nodes["20"]["inputs"] == {"model": {"node": "4", "output": "MODEL"}}
    assert nodes["3"]["inputs"]["model"] == {"node": "20", "output": "MODEL"}


def test_muted_or_bypassed_unknown_nodes_are_left_out_as_comfyui_does(start_image):
    doc = unknown_in_ui()
    for node in doc["nodes"]:
        if node["id"] == 20:
            node["mode"] = 4  # bypassed: the checkpoint's MODEL goes straight to the sampler
        if node["id"] == 21:
            node["mode"] = 2  # muted
    converted = load_workflow(doc)
    assert "20" not in converted["nodes"] and "21" not in converted["nodes"]
    assert converted["nodes"]["3"]["inputs"]["model"] == {"node": "4", "output": "MODEL"}
    executor = Executor(start_image)
    assert np.array_equal(image_of(executor, doc), image_of(executor, ours_txt2img()))


def test_import_command_converts_json_and_comfyui_pngs(tmp_path, capsys):
    from latentgraph.cli import main

    out = tmp_path / "ours.json"
    assert main(["import", str(DATA / "refiner_ui.json"), "-o", str(out)]) == 0
    capsys.readouterr()
    imported = json.loads(out.read_text())
    assert imported == convert(fixture("refiner_ui.json"), "comfyui-ui")
    assert load_workflow(imported) == imported  # our format, stable on reload

    # A PNG saved by ComfyUI carries the UI workflow ("workflow") and the API prompt ("prompt").
    info = PngInfo()
    info.add_text("prompt", json.dumps(fixture("txt2img_api.json")))
    info.add_text("workflow", json.dumps(fixture("txt2img_ui.json")))
    Image.new("RGB", (8, 8)).save(tmp_path / "ComfyUI_00001_.png", pnginfo=info)
    assert main(["import", str(tmp_path / "ComfyUI_00001_.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == load_workflow(fixture("txt2img_ui.json"))
