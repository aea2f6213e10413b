"""Area and mask conditioning (ConditioningSetArea, ...Percentage, ...Strength, ConditioningSetMask):
ComfyUI's weighting (each prompt's prediction on its region times its weight, over the summed
weights; inner edges of an area fade over 8 latent cells), and on the shipped model a prompt given
the left half of the picture draws there."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, txt2img

from latentgraph.graph.errors import NodeError
from latentgraph.nodes.conditioning import encode
from latentgraph.nodes.conditioning_ops import (
    conditioning_combine,
    conditioning_set_area,
    conditioning_set_area_percentage,
    conditioning_set_mask,
)
from latentgraph.nodes.regions import region_weight
from latentgraph.nodes.sampling import combined_predictor, guidance_batch


def ref(node, output="CONDITIONING"):
    return {"node": node, "output": output}


def test_an_area_s_weight_fades_in_over_its_inner_edges(executor):
    executor.run(txt2img(steps=1))
    ((model, clip, _),) = executor.loaded_models()
    (c,) = conditioning_set_area(None, encode(clip, "a red circle"), 48, 64, 16, 0, 0.5)  # pixels; 2 per cell
    rows, cols, weight = region_weight(c, model, (1, 4, 32, 32), "positive")
    assert (rows, cols) == (slice(0, 32), slice(8, 32))
    expected = torch.full((32, 24), 0.5)
    expected[:, :8] *= torch.arange(1, 9) / 8  # the left edge is inside the picture: it fades in
    torch.testing.assert_close(weight[0, 0], expected)
    (p,) = conditioning_set_area_percentage(None, encode(clip, "a red circle"), 0.5, 0.25, 0.25, 0.5, 1.0)
    assert region_weight(p, model, (1, 4, 32, 32), "positive")[:2] == (slice(16, 24), slice(8, 24))
    mask = torch.zeros(1, 64, 64)
    mask[:, 10:30, 40:60] = 1
    (m,) = conditioning_set_mask(None, encode(clip, "a red circle"), mask, 0.8, "mask bounds")
    rows, cols, weight = region_weight(m, model, (1, 4, 32, 32), "positive")
    assert (rows, cols) == (slice(5, 15), slice(20, 30)) and weight.max() == pytest.approx(0.8)  # bilinear: 64 -> 32


def test_the_sampler_weighs_area_predictions_as_comfyui(executor):
    executor.run(txt2img(steps=1))
    ((model, clip, _),) = executor.loaded_models()
    red, blue, neg = (encode(clip, t) for t in ("a red circle", "a blue square", "green"))
    (left,) = conditioning_set_area(None, red, 32, 64, 0, 0, 1.5)  # the left half, cells 0-15
    (both,) = conditioning_combine(None, left, blue)
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[3]
    latents = torch.randn((1, 4, 32, 32), generator=torch.Generator().manual_seed(2))
    predict = combined_predictor(model, both, neg, 6.0, 1, (64, 64), "cpu", torch.float32)

    def run(cond, x):
        embeds, _, _ = guidance_batch(model, cond, cond, 1.0, 1, (64, 64), "cpu", torch.float32)
        return model.unet(scheduler.scale_model_input(x, t), t, encoder_hidden_states=embeds).sample

    with torch.no_grad():
        ours = predict(scheduler, latents, t)
        red_left, blue_all, uncond = run(red, latents[..., :16]), run(blue, latents), run(neg, latents)
    w = torch.full((1, 1, 32, 16), 1.5)
    w[..., 8:] *= torch.arange(8, 0, -1) / 8  # the right edge of the area is inside: it fades out
    cond = blue_all.clone()
    cond[..., :16] = (red_left * w + blue_all[..., :16]) / (w + 1)
    torch.testing.assert_close(ours, uncond + 6.0 * (cond - uncond), atol=1e-5, rtol=1e-4)


def test_on_the_shipped_model_a_prompt_draws_in_its_area(executor):
    """A prompt with a green background given the left half of the picture, combined with a prompt for
    the whole one (a small yellow square at the right, on blue): the left half turns green (the area
    prompt's red circle may be drawn there too, so the median pixel is read), the square is drawn at
    the right only, and nothing red at the right."""
    wf = txt2img(ckpt="tiny-shapes", prompt="a small yellow square on a blue background, at the right",
                 negative="", seed=3, steps=20)
    nodes = wf["nodes"]
    nodes["left"] = {"type": "CLIPTextEncode", "inputs": {"text": "a large red circle on a green background",
                                                          "clip": ref("ckpt", "CLIP")}}
    nodes["area"] = {"type": "ConditioningSetAreaPercentage", "inputs": {
        "conditioning": ref("left"), "width": 0.5, "height": 1.0, "x": 0.0, "y": 0.0, "strength": 1.0}}
    nodes["both"] = {"type": "ConditioningCombine", "inputs": {"conditioning_1": ref("pos"),
                                                               "conditioning_2": ref("area")}}
    nodes["sampler"]["inputs"]["positive"] = ref("both")
    picture = read_png(executor.run(wf).images[0]["path"]).astype(int)
    r, g, b = picture[..., 0], picture[..., 1], picture[..., 2]
    assert np.median((g - np.maximum(r, b))[:, :24]) > 80  # green at the left
    yellow = (r > 180) & (g > 180) & (b < 100)
    assert yellow[:, 32:].sum() > 100 and yellow[:, :32].sum() == 0
    red = (r > 150) & (g < 90) & (b < 90)
    assert red[:, 32:].sum() == 0


def test_mask_conditioning_runs_and_an_empty_mask_bounds_is_refused(executor, settings):
    wf = txt2img(seed=3, steps=3)
    nodes = wf["nodes"]
    nodes["solid"] = {"type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}}
    nodes["masked"] = {"type": "ConditioningSetMask", "inputs": {
        "conditioning": ref("pos"), "mask": ref("solid", "MASK"), "strength": 1.0, "set_cond_area": "mask bounds"}}
    nodes["sampler"]["inputs"]["positive"] = ref("masked")
    from PIL import Image
    Image.new("RGB", (64, 64), (255, 0, 0)).save(settings.input / "mask.png")
    whole = read_png(executor.run(wf).images[0]["path"]).astype(int)  # the mask covers all: the plain picture,
    plain = read_png(executor.run(txt2img(seed=3, steps=3)).images[0]["path"])  # prompts run one by one
    assert np.abs(whole - plain).max() <= 1
    Image.new("RGB", (64, 64), (0, 0, 0)).save(settings.input / "mask.png")
    with pytest.raises(NodeError) as empty:
        executor.run(wf)
    assert (empty.value.error.node_id, empty.value.error.input) == ("sampler", "positive")
