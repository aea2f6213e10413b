"""Canvas nodes (ImagePadForOutpaint, ImageCrop, ImageScaleToTotalPixels) and batch nodes (ImageBatch,
RepeatImageBatch, ImageFromBatch, RepeatLatentBatch, LatentFromBatch); outpainting with the shipped model."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import read_png, to_img2img, txt2img

from latentgraph.graph.errors import NodeError
from latentgraph.nodes.batches import image_batch, image_from_batch, repeat_image_batch
from latentgraph.nodes.canvas import image_crop, image_pad_for_outpaint, image_scale_to_total_pixels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "input"


def ramp(batch=1, height=64, width=64) -> torch.Tensor:
    return torch.linspace(0, 1, batch * 3 * height * width).reshape(batch, 3, height, width)


def test_pad_for_outpaint_puts_the_picture_on_grey_with_a_feathered_mask():
    picture = ramp()
    canvas, mask = image_pad_for_outpaint(None, picture, left=16, top=0, right=0, bottom=8, feathering=8)
    assert canvas.shape == (1, 3, 72, 80) and mask.shape == (1, 72, 80)
    assert torch.equal(canvas[..., :64, 16:], picture)
    assert (canvas[..., :, :16] == 0.5).all() and (canvas[..., 64:, :] == 0.5).all()
    assert (mask[0, :, :16] == 1).all() and (mask[0, 64:] == 1).all()
    inside = mask[0, :64, 16:]
    assert inside[30, 0] == 1 and inside[30, 4] == pytest.approx(0.25) and inside[30, 8] == 0  # the left side
    assert inside[63, 30] == pytest.approx((7 / 8) ** 2) and inside[56, 30] == 0  # the bottom side
    assert inside[0, 30] == 0 and inside[30, 63] == 0  # top and right were not padded: no fade there
    _, unfeathered = image_pad_for_outpaint(None, picture, left=16, top=0, right=0, bottom=0, feathering=32)
    assert (unfeathered[0, :, 16:] == 0).all()  # feathering not below half the picture: no fade


def test_outpainting_extends_the_background(settings):
    """The red circle at the left of a blue picture, given 32 more pixels at the right to paint with
    its prompt: the old part stays, the new part is drawn as the prompt's blue background."""
    from latentgraph.graph.executor import Executor

    shutil.copy(EXAMPLES / "red-circle.png", settings.input / "red-circle.png")
    wf = to_img2img(txt2img(ckpt="tiny-shapes", prompt="a large red circle on a blue background", seed=2, steps=20),
                    "red-circle.png", 1.0)
    nodes = wf["nodes"]
    nodes["pad"] = {"type": "ImagePadForOutpaint", "inputs": {"image": {"node": "load", "output": "IMAGE"},
                    "left": 0, "top": 0, "right": 32, "bottom": 0, "feathering": 8}}
    nodes["encode"] = {"type": "VAEEncodeForInpaint", "inputs": {
        "pixels": {"node": "pad", "output": "IMAGE"}, "vae": {"node": "ckpt", "output": "VAE"},
        "mask": {"node": "pad", "output": "MASK"}, "grow_mask_by": 4}}
    out = read_png(Executor(settings).run(wf).images[0]["path"]).astype(int)
    original = read_png(settings.input / "red-circle.png").astype(int)
    assert out.shape == (64, 96, 3)
    assert np.abs(out[:, :48] - original[:, :48]).mean() < 12  # the VAE's round trip, not a new picture
    margin = out[:, 72:].reshape(-1, 3).mean(0)
    assert np.abs(margin - [40, 80, 220]).max() < 40, margin  # blue, not the grey it was given


def test_crop_and_total_pixels():
    picture = ramp(height=32, width=64)
    assert torch.equal(image_crop(None, picture, 16, 8, 40, 20)[0], picture[..., 20:28, 40:56])
    assert image_crop(None, picture, 100, 100, 60, 0)[0].shape == (1, 3, 32, 4)  # cut short at the edge
    (scaled,) = image_scale_to_total_pixels(None, picture, "bilinear", 0.01)
    assert scaled.shape == (1, 3, 72, 145)  # sqrt(0.01 * 2^20 / 2048) = 2.26 times as large, same aspect


def test_image_batches():
    first, second = ramp(height=64, width=64), ramp(height=32, width=64)
    (joined,) = image_batch(None, first, second)
    assert joined.shape == (2, 3, 64, 64) and torch.equal(joined[0], first[0])
    assert torch.allclose(joined[1], torch.nn.functional.interpolate(
        second[..., :, 16:48], size=(64, 64), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1))
    (four,) = repeat_image_batch(None, joined, 2)
    assert four.shape[0] == 4 and torch.equal(four[2], joined[0])
    assert torch.equal(image_from_batch(None, four, 1, 2)[0], four[1:3])
    assert image_from_batch(None, four, 9, 2)[0].shape[0] == 1  # clamped to the last picture


def test_latent_from_batch_picks_a_sampled_latent_and_repeat_latent_batch_repeats(executor):
    wf = txt2img(seed=3, steps=3, batch_size=2)
    both = [read_png(i["path"]) for i in executor.run(wf).images]
    assert not np.array_equal(both[0], both[1])
    wf["nodes"]["pick"] = {"type": "LatentFromBatch", "inputs": {"samples": {"node": "sampler", "output": "LATENT"},
                                                                  "batch_index": 1, "length": 4}}
    wf["nodes"]["decode"]["inputs"]["samples"] = {"node": "pick", "output": "LATENT"}
    (picked,) = executor.run(wf).images
    # the same latent, decoded alone instead of in a batch of two (the convolutions' last bits differ)
    picked = read_png(picked["path"]).astype(int)
    assert np.abs(picked - both[1]).max() <= 1 and np.abs(picked - both[0]).mean() > 5
    wf["nodes"]["pick"]["inputs"]["batch_index"] = 2
    with pytest.raises(NodeError) as past:
        executor.run(wf)
    assert (past.value.error.node_id, past.value.error.input) == ("pick", "batch_index")

    wf = txt2img(seed=3, steps=3)
    wf["nodes"]["repeat"] = {"type": "RepeatLatentBatch", "inputs": {"samples": {"node": "latent", "output": "LATENT"},
                                                                      "amount": 2}}
    wf["nodes"]["sampler"]["inputs"]["latent_image"] = {"node": "repeat", "output": "LATENT"}
    repeated = [read_png(i["path"]) for i in executor.run(wf).images]
    assert len(repeated) == 2 and np.array_equal(repeated[0], both[0]) and np.array_equal(repeated[1], both[1])
