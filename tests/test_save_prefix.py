"""SaveImage's filename_prefix placeholders, as ComfyUI's: dates, picture size, a node's input."""
from __future__ import annotations

from datetime import datetime

import torch
from helpers import txt2img

from latentgraph.nodes.image import expand_prefix

WORKFLOW = {"nodes": {
    "sampler": {"type": "KSampler", "title": "KSampler", "inputs": {"seed": 42, "model": {"node": "c", "output": "M"}}},
    "pos": {"type": "CLIPTextEncode", "inputs": {"text": "a red/../circle: big"}}}}


def test_placeholders_expand_and_workflow_values_cannot_add_folders():
    pictures = torch.zeros(2, 3, 32, 64)
    when = datetime(2026, 1, 2, 3, 4, 5)
    assert expand_prefix("%date:yyyy-MM-dd hh-mm-ss%/x", WORKFLOW, pictures, when) == "2026-01-02 03-04-05/x"
    assert expand_prefix("%year%%month%%day%_%width%x%height%", WORKFLOW, pictures, when) == "20260102_64x32"
    assert expand_prefix("s%KSampler.seed%_%sampler.seed%", WORKFLOW, pictures, when) == "s42_42"
    assert expand_prefix("%pos.text%", WORKFLOW, pictures, when) == "a red_.._circle_ big"
    # unknown names and links stay as written
    assert expand_prefix("%nope.x%_%sampler.model%_50%", WORKFLOW, pictures, when) == "%nope.x%_%sampler.model%_50%"


def test_save_image_writes_into_the_expanded_folder(executor, settings):
    wf = txt2img(seed=3, steps=2, prompt="a red circle")
    wf["nodes"]["save"]["inputs"]["filename_prefix"] = "%date:yyyy%/seed%sampler.seed%_%pos.text%"
    (image,) = executor.run(wf).images
    year = str(datetime.now().year)
    assert image["filename"] == f"{year}/seed3_a red circle_00001_.png"
    assert (settings.output / year / "seed3_a red circle_00001_.png").is_file()
