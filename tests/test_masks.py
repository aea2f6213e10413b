"""Mask nodes (InvertMask, GrowMask, ImageToMask, MaskToImage) and VAEEncodeForInpaint."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import picture_with_hole, read_png, to_img2img, txt2img
from PIL import Image

from latentgraph.graph.errors import NodeError
from latentgraph.nodes.latent import set_latent_noise_mask, vae_encode, vae_encode_for_inpaint
from latentgraph.nodes.masks import grow, grow_mask, image_to_mask, invert_mask, mask_to_image


def square(size=16, lo=6, hi=10) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[:, lo:hi, lo:hi] = 1
    return mask


def test_grow_and_shrink():
    mask = square()
    (grown,) = grow_mask(None, mask, 2, False)
    assert torch.equal(grown, square(lo=4, hi=12))  # a square grows by 2 on every side
    (tapered,) = grow_mask(None, mask, 2, True)
    assert tapered[0, 4, 4] == 0 and tapered[0, 4, 6] == 1 and tapered.sum() < grown.sum()  # corners cut
    (shrunk,) = grow_mask(None, square(lo=4, hi=12), -2, False)
    assert torch.equal(shrunk, mask)
    assert torch.equal(grow(mask, 0), mask)


def test_invert_and_conversions():
    mask = square()
    assert torch.equal(invert_mask(None, mask)[0], 1 - mask)
    (image,) = mask_to_image(None, mask)
    assert image.shape == (1, 3, 16, 16) and torch.equal(image[:, 1], mask)
    rgb = torch.rand(1, 3, 16, 16)
    assert torch.equal(image_to_mask(None, rgb, "blue")[0], rgb[:, 2])


def test_vae_encode_for_inpaint_greys_the_grown_mask_and_sets_it(executor):
    executor.run(txt2img(steps=1))
    ((_, _, vae),) = executor.loaded_models()
    ctx = SimpleNamespace()
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 64, 64)
    mask[:, 20:30, 20:30] = 1
    (latent,) = vae_encode_for_inpaint(ctx, pixels, vae, mask, 4)
    grown = square(64, 16, 34)
    grey = pixels.clone()
    grey[:, :, 16:34, 16:34] = 0.5
    (expected,) = set_latent_noise_mask(ctx, vae_encode(ctx, grey, vae)[0], grown)
    assert torch.equal(latent.noise_mask, grown)
    assert torch.equal(latent.dist, expected.dist)


def test_vae_encode_for_inpaint_in_a_graph(executor, settings):
    picture_with_hole(settings.input / "hole.png", 64, slice(20, 40), slice(20, 40), seed=3)
    wf = to_img2img(txt2img(seed=2, steps=6), "hole.png", 1.0)
    wf["nodes"]["encode"] = {"type": "VAEEncodeForInpaint", "inputs": {
        "pixels": {"node": "load", "output": "IMAGE"}, "vae": {"node": "ckpt", "output": "VAE"},
        "mask": {"node": "load", "output": "MASK"}, "grow_mask_by": 6}}
    image = read_png(executor.run(wf).images[0]["path"])
    assert image.shape == (64, 64, 3) and image.std() > 1
    Image.new("L", (32, 32), 255).save(settings.input / "small.png")
    wf["nodes"]["small"] = {"type": "LoadImageMask", "inputs": {"image": "small.png", "channel": "red"}}
    wf["nodes"]["encode"]["inputs"]["mask"] = {"node": "small", "output": "MASK"}
    with pytest.raises(NodeError) as refused:
        executor.run(wf)
    assert refused.value.error.node_id == "encode" and refused.value.error.input == "mask"


def test_solid_threshold_feather_crop_and_composite_masks():
    from latentgraph.nodes.masks import crop_mask, feather_mask, mask_composite, solid_mask, threshold_mask

    (solid,) = solid_mask(None, 0.25, 6, 4)
    assert solid.shape == (1, 4, 6) and (solid == 0.25).all()
    ramp = torch.linspace(0, 1, 11)[None, None, :].repeat(1, 3, 1)
    assert torch.equal(threshold_mask(None, ramp, 0.5)[0][0, 0], (ramp[0, 0] > 0.5).float())
    (feathered,) = feather_mask(None, torch.ones(1, 10, 10), 4, 0, 2, 0)
    torch.testing.assert_close(feathered[0, 5], torch.tensor([0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 0.5]))
    assert (feathered[:, :, 4] == 1).all()  # top and bottom untouched
    (cut,) = crop_mask(None, ramp, 2, 1, 3, 5)
    assert torch.equal(cut, ramp[:, 1:3, 2:5])
    (added,) = mask_composite(None, torch.full((1, 4, 4), 0.75), torch.full((1, 2, 2), 0.5), 3, 1, "add")
    assert added[0, 1, 3] == 1.0 and added[0, 0, 3] == 0.75 and added[0, 1, 2] == 0.75  # clamped, only the overlap
    (xored,) = mask_composite(None, torch.ones(1, 2, 2), torch.tensor([[[1.0, 0.0]]]), 0, 0, "xor")
    assert xored[0].tolist() == [[0.0, 1.0], [1.0, 1.0]]
