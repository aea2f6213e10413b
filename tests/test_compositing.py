"""ImageCompositeMasked, ImageInvert, ImageBlur; and the inpainting finish: the new part pasted over
the untouched original through the mask."""
from __future__ import annotations

import numpy as np
import torch
from helpers import picture_with_hole, read_png, to_img2img, txt2img

from latentgraph.nodes.image import gaussian_blur, image_blur, image_composite_masked, image_invert


def test_composite_through_a_mask_at_an_offset_clipped_to_the_destination():
    dest, src = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 4, 4)
    mask[:, :2] = 1.0
    mask[:, 2] = 0.25
    (out,) = image_composite_masked(None, dest, src, 6, 1, False, mask)
    assert torch.equal(out[0, 0, 1:3, 6:8], torch.ones(2, 2)) and torch.equal(out[0, 0, 3, 6:8], torch.full((2,), 0.25))
    assert out[0, 0, 4:, :].sum() == 0 and out[0, 0, :, :6].sum() == 0 and dest.sum() == 0  # dest untouched
    (pasted,) = image_composite_masked(None, dest, src, 0, 0, True, None)
    assert torch.equal(pasted, torch.ones(1, 3, 8, 8))  # resized to the destination, no mask: all source


def test_invert_and_blur():
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(image_invert(None, image)[0], 1 - image)
    (blurred,) = image_blur(None, image, 2, 1.5)
    assert torch.equal(blurred, gaussian_blur(image, 2, 1.5)) and blurred.std() < image.std()
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(image_blur(None, flat, 3, 2.0)[0], flat)


def test_inpainted_part_over_the_original(executor, settings):
    rgba = picture_with_hole(settings.input / "hole.png", 64, slice(16, 40), slice(24, 48), seed=4)
    wf = to_img2img(txt2img(seed=3, steps=6), "hole.png", 1.0)
    nodes = wf["nodes"]
    nodes["masked"] = {"type": "SetLatentNoiseMask", "inputs": {
        "samples": {"node": "encode", "output": "LATENT"}, "mask": {"node": "load", "output": "MASK"}}}
    nodes["sampler"]["inputs"]["latent_image"] = {"node": "masked", "output": "LATENT"}
    inpainted = read_png(executor.run(wf).images[0]["path"])
    nodes["paste"] = {"type": "ImageCompositeMasked", "inputs": {
        "destination": {"node": "load", "output": "IMAGE"}, "source": {"node": "decode", "output": "IMAGE"},
        "x": 0, "y": 0, "resize_source": False, "mask": {"node": "load", "output": "MASK"}}}
    nodes["save"]["inputs"]["images"] = {"node": "paste", "output": "IMAGE"}
    final = read_png(executor.run(wf).images[0]["path"])
    hole = rgba[..., 3] == 0
    assert np.array_equal(final[~hole], rgba[..., :3][~hole])  # the original, exactly, outside the hole
    assert np.array_equal(final[hole], inpainted[hole])
