"""The example pack's own tests: run them where the pack is installed (pip install -e . or a wheel),
`python -m pytest` in examples/node-pack. They go through latentgraph's registry, validation and
executor, as a workflow would."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentgraph import Executor, Settings
from latentgraph.graph.validate import validate
from latentgraph.nodes import registry


def workflow(node_type: str, **inputs) -> dict:
    return {"format": "latentgraph", "version": 2, "nodes": {
        "load": {"type": "LoadImage", "inputs": {"image": "in.png"}},
        "op": {"type": node_type, "inputs": {"image": {"node": "load", "output": "IMAGE"}, **inputs}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "op", "output": "IMAGE"},
                                                 "filename_prefix": "pack"}},
    }}


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "input").mkdir()
    pixels = np.array([[[51, 102, 153], [255, 255, 255]]], dtype=np.uint8)  # 2x1: (0.2, 0.4, 0.6) and white
    Image.fromarray(pixels).save(tmp_path / "input" / "in.png")
    return Settings(models=tmp_path / "models", input=tmp_path / "input", output=tmp_path / "output",
                    temp=tmp_path / "temp", device="cpu")


def saved_pixels(result) -> np.ndarray:
    [image] = result.images
    with Image.open(image["path"]) as picture:
        return np.array(picture.convert("RGB")).astype(int)


def test_the_pack_registers_its_nodes_with_its_version():
    specs = registry()
    for name in ("ColorTint", "ImagePosterize"):
        assert specs[name].pack == "latentgraph-example-nodes"
        assert specs[name].pack_version == "0.1.0"


def test_color_tint_colours_the_brightness(settings):
    result = Executor(settings).run(workflow("ColorTint", color="#ff8800", strength=0.5))
    tint = np.array([1.0, 0x88 / 255, 0.0])
    for pixel, rgb in ((0, np.array([0.2, 0.4, 0.6])), (1, np.ones(3))):
        luma = rgb @ [0.299, 0.587, 0.114]
        expected = 255 * (0.5 * rgb + 0.5 * luma * tint)
        assert np.abs(saved_pixels(result)[0, pixel] - expected).max() <= 1  # rounding to 8 bits


def test_posterize_keeps_only_the_levels(settings):
    result = Executor(settings).run(workflow("ImagePosterize", levels=2))
    assert saved_pixels(result).tolist() == [[[0, 0, 255], [255, 255, 255]]]


def test_a_bad_colour_is_refused_before_anything_runs(settings):
    _, errors = validate(workflow("ColorTint", color="orange", strength=0.5), settings)
    assert [(e.node_id, e.input) for e in errors] == [("op", "color")]
    assert "#rrggbb" in errors[0].message
