"""EmptyImage, ImageFlip, ImageRotate, ImageBlend: ComfyUI's meanings, checked against PIL and known values."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import read_png
from PIL import Image

from latentgraph.graph.executor import Executor
from latentgraph.nodes.canvas import empty_image
from latentgraph.nodes.image import image_blend


def test_flip_rotate_and_empty_image_in_a_graph(settings):
    rng = np.random.default_rng(2)
    picture = Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8))  # not square: turns show
    picture.save(settings.input / "p.png")

    def ref(node):
        return {"node": node, "output": "IMAGE"}
    nodes = {"load": {"type": "LoadImage", "inputs": {"image": "p.png"}}}
    expected = {}
    for rotation, pil in [("90 degrees", Image.Transpose.ROTATE_270), ("180 degrees", Image.Transpose.ROTATE_180),
                          ("270 degrees", Image.Transpose.ROTATE_90), ("none", None)]:  # PIL turns anticlockwise
        name = f"rot{rotation.split()[0]}"
        nodes[name] = {"type": "ImageRotate", "inputs": {"image": ref("load"), "rotation": rotation}}
        expected[name] = picture.transpose(pil) if pil else picture
    for method, pil in [("x-axis: vertically", Image.Transpose.FLIP_TOP_BOTTOM),
                        ("y-axis: horizontally", Image.Transpose.FLIP_LEFT_RIGHT)]:
        name = f"flip{method[0]}"
        nodes[name] = {"type": "ImageFlip", "inputs": {"image": ref("load"), "flip_method": method}}
        expected[name] = picture.transpose(pil)
    nodes["empty"] = {"type": "EmptyImage", "inputs": {"width": 8, "height": 4, "batch_size": 2, "color": 0xFF8000}}
    expected["empty"] = Image.new("RGB", (8, 4), (255, 128, 0))
    for name in list(expected):
        nodes[f"save_{name}"] = {"type": "SaveImage", "inputs": {"images": ref(name), "filename_prefix": name}}
    result = Executor(settings).run({"format": "latentgraph", "version": 2, "nodes": nodes})
    saved = {}
    for image in result.images:
        saved.setdefault(image["path"].split("/")[-1].split("_")[0], read_png(image["path"]))
    assert sorted(saved) == sorted(expected)
    for name, picture_expected in expected.items():
        assert np.array_equal(saved[name], np.array(picture_expected)), name
    assert len([i for i in result.images if i["filename"].startswith("empty")]) == 2


def test_empty_image_colour_channels():
    (image,) = empty_image(None, width=3, height=2, batch_size=1, color=0x123456)
    assert image.shape == (1, 3, 2, 3)
    assert torch.allclose(image[0, :, 0, 0], torch.tensor([0x12, 0x34, 0x56]) / 255)


@pytest.mark.parametrize("mode, a, b, blended", [
    ("normal", 0.2, 0.8, 0.8), ("multiply", 0.5, 0.5, 0.25), ("screen", 0.5, 0.5, 0.75),
    ("overlay", 0.25, 0.5, 0.25), ("overlay", 0.75, 0.5, 0.75), ("overlay", 0.25, 1.0, 0.5),
    ("soft_light", 0.3, 0.5, 0.3), ("soft_light", 0.25, 1.0, 0.5), ("soft_light", 0.64, 1.0, 0.8),
    ("difference", 0.75, 0.25, 0.5), ("difference", 0.25, 0.75, -0.5),  # signed, as ComfyUI's
])
def test_blend_modes_known_values(mode, a, b, blended):
    image1, image2 = torch.full((1, 3, 2, 2), a), torch.full((1, 3, 2, 2), b)
    (full,) = image_blend(None, image1, image2, 1.0, mode)
    torch.testing.assert_close(full, torch.full_like(full, min(max(blended, 0.0), 1.0)))
    (half,) = image_blend(None, image1, image2, 0.5, mode)  # the factor mixes the blend with image1, then clamps
    torch.testing.assert_close(half, torch.full_like(half, min(max(0.5 * a + 0.5 * blended, 0.0), 1.0)))


def test_blend_fits_the_second_picture_to_the_first():
    image1 = torch.zeros(1, 3, 4, 4)
    image2 = torch.zeros(1, 3, 4, 8)
    image2[..., 2:6] = 1.0  # its centre square is white, the sides black
    (out,) = image_blend(None, image1, image2, 1.0, "normal")
    assert out.shape == image1.shape and torch.allclose(out, torch.ones_like(out))
