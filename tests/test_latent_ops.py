"""Latent arithmetic, batching and transforms: known values, the second latent fitted to the first, empty
canvases, masks that follow a transform, and flips and turns of a drawn shape judged on the shipped model."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import read_png, shipped_model_executor

from latentgraph.graph.errors import InputError
from latentgraph.nodes.canvas import image_flip, image_rotate
from latentgraph.nodes.latent_ops import (
    latent_add,
    latent_batch,
    latent_crop,
    latent_flip,
    latent_interpolate,
    latent_multiply,
    latent_rotate,
    latent_subtract,
)
from latentgraph.nodes.values import Latent


def latent(samples: torch.Tensor, mask: torch.Tensor | None = None) -> Latent:
    b, _, h, w = samples.shape
    return Latent(samples=samples, width=w * 8, height=h * 8, batch_size=b, noise_mask=mask)


def canvas(width: int, height: int, batch: int = 1) -> Latent:
    return Latent(samples=None, width=width, height=height, batch_size=batch)


def test_arithmetic_fits_the_second_latent_to_the_first():
    a = torch.randn(2, 4, 6, 8)
    c = torch.full((1, 4, 3, 5), 0.25)  # another size and batch: cropped, resized, spread over a's batch
    torch.testing.assert_close(latent_add(None, latent(a), latent(c))[0].samples, a + 0.25)
    torch.testing.assert_close(latent_subtract(None, latent(a), latent(c))[0].samples, a - 0.25)
    torch.testing.assert_close(latent_multiply(None, latent(a), -1.5)[0].samples, a * -1.5)
    out = latent_add(None, latent(a), canvas(64, 48))[0]  # an empty canvas is zeros
    torch.testing.assert_close(out.samples, a)
    assert out.batch_size == 2 and out.dist is None
    assert latent_multiply(None, canvas(64, 48), 3.0)[0].samples is None
    with pytest.raises(InputError) as refused:
        latent_add(None, latent(a), latent(torch.zeros(1, 3, 6, 8)))
    assert refused.value.input_name == "samples2"


def test_interpolate_mixes_directions_and_lengths():
    a = torch.zeros(1, 4, 1, 1)
    b = torch.zeros(1, 4, 1, 1)
    a[0, 0], b[0, 1] = 3.0, 1.0  # lengths 3 and 1, at right angles
    assert torch.equal(latent_interpolate(None, latent(a), latent(b), 1.0)[0].samples, a)
    assert torch.equal(latent_interpolate(None, latent(a), latent(b), 0.0)[0].samples, b)
    half = latent_interpolate(None, latent(a), latent(b), 0.5)[0].samples[0, :, 0, 0]
    # direction halfway between the two (45 degrees), length the mean of 3 and 1
    torch.testing.assert_close(half, torch.tensor([math.sqrt(2), math.sqrt(2), 0.0, 0.0]))


def test_batch_puts_the_second_after_the_first():
    a, b = torch.randn(2, 4, 6, 8), torch.full((1, 4, 6, 8), 7.0)
    out = latent_batch(None, latent(a), latent(b))[0]
    assert out.batch_size == 3 and torch.equal(out.samples[:2], a) and torch.equal(out.samples[2], b[0])
    wide = latent_batch(None, latent(a), latent(torch.full((1, 4, 6, 16), 2.0)))[0].samples
    assert wide.shape == (3, 4, 6, 8) and torch.allclose(wide[2], torch.tensor(2.0))
    with pytest.raises(InputError) as refused:
        latent_batch(None, latent(a, mask=torch.ones(2, 48, 64)), latent(b))
    assert refused.value.input_name == "samples2"


@pytest.mark.parametrize("method", ["x-axis: vertically", "y-axis: horizontally"])
def test_flip_is_image_flip_and_the_mask_follows(method):
    a, mask = torch.randn(1, 4, 6, 8), torch.rand(1, 48, 64)
    out = latent_flip(None, latent(a, mask), method)[0]
    assert torch.equal(out.samples, image_flip(None, a, method)[0])
    assert torch.equal(out.noise_mask, image_flip(None, mask[:, None], method)[0][:, 0])
    assert latent_flip(None, canvas(64, 48), method)[0].samples is None


@pytest.mark.parametrize("rotation", ["none", "90 degrees", "180 degrees", "270 degrees"])
def test_rotate_is_image_rotate_and_swaps_the_size(rotation):
    a, mask = torch.randn(1, 4, 6, 8), torch.rand(1, 48, 64)
    out = latent_rotate(None, latent(a, mask), rotation)[0]
    assert torch.equal(out.samples, image_rotate(None, a, rotation)[0])
    assert torch.equal(out.noise_mask, image_rotate(None, mask[:, None], rotation)[0][:, 0])
    quarter = rotation in ("90 degrees", "270 degrees")
    assert (out.width, out.height) == ((48, 64) if quarter else (64, 48))
    empty = latent_rotate(None, canvas(64, 48), rotation)[0]
    assert empty.samples is None and (empty.width, empty.height) == ((48, 64) if quarter else (64, 48))


def test_crop_in_whole_cells_with_the_mask():
    a = torch.arange(6 * 8, dtype=torch.float32).reshape(1, 1, 6, 8)
    mask = torch.rand(1, 48, 64)
    out = latent_crop(None, latent(a, mask), width=24, height=16, x=20, y=8)[0]  # x=20 px is cell 2
    assert torch.equal(out.samples, a[..., 1:3, 2:5]) and (out.width, out.height) == (24, 16)
    assert torch.equal(out.noise_mask, mask[:, 8:24, 16:40])
    # past the edge: cut at the latent's end, at least one cell
    edge = latent_crop(None, latent(a), width=512, height=512, x=4096, y=0)[0]
    assert torch.equal(edge.samples, a[..., :, 7:]) and (edge.width, edge.height) == (8, 48)
    empty = latent_crop(None, canvas(128, 64), width=512, height=32, x=64, y=8)[0]
    assert empty.samples is None and (empty.width, empty.height) == (64, 32)


def test_flip_and_turn_a_drawn_shape_on_the_shipped_model(tmp_path):
    """A red square drawn at the left, its latent mirrored left to right, comes out at the right; one drawn at
    the top and turned a quarter clockwise comes out at the right too."""
    from latentgraph.training.judge import read

    def ref(node, output):
        return {"node": node, "output": output}
    nodes = {"ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
             "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
             "empty": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
    for name, where, op in (("flip", "left", {"type": "LatentFlip", "inputs": {"flip_method": "y-axis: horizontally"}}),
                            ("turn", "top", {"type": "LatentRotate", "inputs": {"rotation": "90 degrees"}})):
        nodes[f"pos_{name}"] = {"type": "CLIPTextEncode", "inputs": {
            "text": f"a large red square on a yellow background, at the {where}", "clip": ref("ckpt", "CLIP")}}
        nodes[f"draw_{name}"] = {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref(f"pos_{name}", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"), "latent_image": ref("empty", "LATENT"), "seed": 3, "steps": 20,
            "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}
        nodes[name] = {"type": op["type"], "inputs": {"samples": ref(f"draw_{name}", "LATENT"), **op["inputs"]}}
        for source in (f"draw_{name}", name):
            nodes[f"decode_{source}"] = {"type": "VAEDecode", "inputs": {"samples": ref(source, "LATENT"),
                                                                         "vae": ref("ckpt", "VAE")}}
            nodes[f"save_{source}"] = {"type": "SaveImage", "inputs": {"images": ref(f"decode_{source}", "IMAGE"),
                                                                       "filename_prefix": source.replace("_", "-")}}
    result = shipped_model_executor(tmp_path).run({"format": "latentgraph", "version": 2, "nodes": nodes})
    seen = {image["path"].split("/")[-1].split("_")[0]: read(read_png(image["path"])) for image in result.images}
    for name, before in (("flip", "left"), ("turn", "top")):
        drawn, moved = seen[f"draw-{name}"], seen[name]
        assert (drawn["position"], drawn["colour"], drawn["shape"]) == (before, "red", "square"), drawn
        assert (moved["position"], moved["colour"], moved["shape"]) == ("right", "red", "square"), moved
