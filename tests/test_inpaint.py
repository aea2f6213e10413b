"""Inpainting: LoadImage's MASK (the transparent part) -> SetLatentNoiseMask -> KSampler gives,
bit for bit, what diffusers' StableDiffusionInpaintPipeline gives with the same modules (an ordinary
4-channel UNet), and for SDXL its StableDiffusionXLInpaintPipeline; masks from LoadImageMask; the
unmasked part keeps the picture."""
from __future__ import annotations

from types import SimpleNamespace

import diffusers
import numpy as np
import pytest
import torch
from helpers import picture_with_hole, read_png, to_img2img, txt2img
from PIL import Image
from sdxl_helpers import pipeline, scheduler_for, sdxl_executor, sdxl_models_dir, sdxl_settings, sdxl_txt2img  # noqa: F401
from test_fidelity_sd15 import as_uint8, reference_pipeline

from latentgraph.graph.errors import NodeError

HOLE = (slice(16, 48), slice(8, 40))  # rows, columns of the part to repaint


@pytest.fixture
def start(settings) -> Image.Image:
    """A noisy RGB picture whose alpha is 0 (transparent) in HOLE, saved as start.png."""
    rgba = picture_with_hole(settings.input / "start.png", 64, *HOLE, seed=1)
    return Image.fromarray(rgba[..., :3])


def inpaint_workflow(denoise: float, sampler=("euler", "normal"), mask_node=None) -> dict:
    wf = to_img2img(txt2img(seed=5, steps=8, cfg=7.0, sampler_name=sampler[0], scheduler=sampler[1]),
                    "start.png", denoise)
    nodes = wf["nodes"]
    nodes["masked"] = {"type": "SetLatentNoiseMask", "inputs": {
        "samples": {"node": "encode", "output": "LATENT"}, "mask": mask_node or {"node": "load", "output": "MASK"}}}
    nodes["sampler"]["inputs"]["latent_image"] = {"node": "masked", "output": "LATENT"}
    return wf


@pytest.mark.parametrize("denoise", [1.0, 0.6])
@pytest.mark.parametrize("sampler", [("euler", "normal"), ("euler_ancestral", "normal"), ("dpmpp_2m", "karras")],
                         ids=lambda p: "-".join(p))
def test_inpaint_equals_stable_diffusion_inpaint_pipeline(executor, start, sampler, denoise):
    ours = read_png(executor.run(inpaint_workflow(denoise, sampler)).images[0]["path"])
    pipe = reference_pipeline(executor, diffusers.StableDiffusionInpaintPipeline, sampler)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[HOLE] = 255  # white: repaint
    theirs = pipe("a red circle", image=start, mask_image=Image.fromarray(mask), strength=denoise,
                  negative_prompt="", num_inference_steps=8, guidance_scale=7.0, height=64, width=64,
                  generator=torch.Generator("cpu").manual_seed(5), output_type="np").images
    assert ours.std() > 1
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_only_the_masked_part_follows_the_prompt(executor, start):
    images = []
    for prompt in ("a red circle", "a large green square on a yellow background"):
        wf = inpaint_workflow(1.0)
        wf["nodes"]["pos"]["inputs"]["text"] = prompt
        images.append(read_png(executor.run(wf).images[0]["path"]).astype(int))
    changed = np.abs(images[0] - images[1]).max(axis=-1)
    inside = np.zeros((64, 64), dtype=bool)
    inside[HOLE] = True
    far = np.ones((64, 64), dtype=bool)  # the decoder mixes neighbouring latents: keep 8 px off the hole
    far[8:56, 0:48] = False
    assert changed[inside].mean() > 5 and changed[far].max() <= 2


def test_load_image_mask_channels(executor, settings, start):
    from latentgraph.nodes.image import load_image_mask

    ctx = SimpleNamespace(settings=settings, device="cpu")
    (alpha,) = load_image_mask(ctx, "start.png", "alpha")
    assert alpha.shape == (1, 64, 64) and alpha[0][HOLE].min() == 1 and alpha.sum() == 32 * 32
    (red,) = load_image_mask(ctx, "start.png", "red")
    assert torch.allclose(red[0], torch.from_numpy(np.array(start)[..., 0] / 255.0).float())
    wf = inpaint_workflow(1.0, mask_node={"node": "maskfile", "output": "MASK"})
    wf["nodes"]["maskfile"] = {"type": "LoadImageMask", "inputs": {"image": "start.png", "channel": "alpha"}}
    from_mask_node = read_png(executor.run(wf).images[0]["path"])
    assert np.array_equal(from_mask_node, read_png(executor.run(inpaint_workflow(1.0)).images[0]["path"]))


def test_a_mask_smaller_than_the_picture_is_refused(executor, settings, start):
    Image.new("L", (32, 32), 255).save(settings.input / "small.png")
    wf = inpaint_workflow(1.0, mask_node={"node": "small", "output": "MASK"})
    wf["nodes"]["small"] = {"type": "LoadImageMask", "inputs": {"image": "small.png", "channel": "red"}}
    with pytest.raises(NodeError) as refused:
        executor.run(wf)
    assert refused.value.error.node_id == "masked" and refused.value.error.input == "mask"



def test_sdxl_inpaint_equals_stable_diffusion_xl_inpaint_pipeline(sdxl_executor, sdxl_settings):  # noqa: F811
    rgba = picture_with_hole(sdxl_settings.input / "start.png", 32, slice(8, 24), slice(4, 20), seed=2)
    wf = to_img2img(sdxl_txt2img(seed=4, steps=6), "start.png", 0.7)
    wf["nodes"]["masked"] = {"type": "SetLatentNoiseMask", "inputs": {
        "samples": {"node": "encode", "output": "LATENT"}, "mask": {"node": "load", "output": "MASK"}}}
    wf["nodes"]["sampler"]["inputs"]["latent_image"] = {"node": "masked", "output": "LATENT"}
    ours = read_png(sdxl_executor.run(wf).images[0]["path"])
    pipe = pipeline(sdxl_executor, diffusers.StableDiffusionXLInpaintPipeline, "sdxl",
                    scheduler_for(sdxl_executor, "sdxl", "EulerDiscreteScheduler", timestep_spacing="linspace"))
    theirs = pipe("a large red circle", image=Image.fromarray(rgba[..., :3]),
                  mask_image=Image.fromarray(((rgba[..., 3] == 0) * 255).astype(np.uint8)), strength=0.7,
                  num_inference_steps=6, guidance_scale=6.5, height=32, width=32,
                  generator=torch.Generator("cpu").manual_seed(4), output_type="np").images
    assert ours.std() > 1
    assert np.array_equal(ours, as_uint8(theirs)[0])
