"""SDXL through the graph equals diffusers' SDXL pipelines, bit for bit, for the same loaded modules."""
from __future__ import annotations

import copy

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png
from sdxl_helpers import (  # noqa: F401
    as_uint8,
    base_and_refiner,
    loaded,
    pipeline,
    ref,
    scheduler_for,
    sdxl_executor,
    sdxl_models_dir,
    sdxl_settings,
    sdxl_txt2img,
)

from latentgraph.graph.errors import NodeError


def generator(seed):
    return torch.Generator("cpu").manual_seed(seed)


def test_txt2img_equals_stable_diffusion_xl_pipeline(sdxl_executor):
    ours = read_png(sdxl_executor.run(sdxl_txt2img(seed=3, steps=6, cfg=6.5)).images[0]["path"])
    pipe = pipeline(sdxl_executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(sdxl_executor, "sdxl", "EulerDiscreteScheduler", timestep_spacing="linspace"))
    # Our empty negative is diffusers' "no negative prompt": zeros, as force_zeros_for_empty_prompt asks.
    theirs = pipe("a large red circle", num_inference_steps=6, guidance_scale=6.5, height=32, width=32,
                  generator=generator(3), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_clip_text_encode_sdxl_equals_prompt_2_and_size_conditioning(sdxl_executor):
    workflow = sdxl_txt2img(seed=4, steps=5, cfg=5.0, sampler_name="dpmpp_2m", scheduler="karras")
    nodes = workflow["nodes"]
    nodes["pos"] = {"type": "CLIPTextEncodeSDXL", "inputs": {
        "clip": ref("ckpt", "CLIP"), "width": 48, "height": 40, "crop_w": 8, "crop_h": 4, "target_width": 32,
        "target_height": 24, "text_g": "a blue square", "text_l": "a red circle"}}
    nodes["neg"]["inputs"]["text"] = "green"
    ours = read_png(sdxl_executor.run(workflow).images[0]["path"])
    pipe = pipeline(sdxl_executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(sdxl_executor, "sdxl", "DPMSolverMultistepScheduler", algorithm_type="dpmsolver++",
                                  use_karras_sigmas=True, timestep_spacing="linspace"))
    # ComfyUI's negative encoder gives its own size conditioning: the sampler's default, the latent's size.
    theirs = pipe(prompt="a red circle", prompt_2="a blue square", negative_prompt="green", num_inference_steps=5,
                  guidance_scale=5.0, height=32, width=32, original_size=(40, 48), crops_coords_top_left=(4, 8),
                  target_size=(24, 32), negative_original_size=(32, 32), negative_target_size=(32, 32),
                  negative_crops_coords_top_left=(0, 0), generator=generator(4), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])


# (sampler_name, scheduler) -> the diffusers scheduler set up the same way.
SPLIT_SAMPLERS = {
    ("euler", "normal"): ("EulerDiscreteScheduler", {"timestep_spacing": "linspace"}),
    ("dpmpp_2m", "karras"): ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True,
                                                             "timestep_spacing": "linspace"}),
}


def diffusers_base_then_refiner(executor, sampler, seed, steps, fraction, prompt, size):
    class_name, flags = sampler
    base = pipeline(executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(executor, "sdxl", class_name, **flags))
    refiner = pipeline(executor, diffusers.StableDiffusionXLImg2ImgPipeline, "sdxl_refiner",
                       scheduler_for(executor, "sdxl_refiner", class_name, **flags))
    latents = base(prompt, num_inference_steps=steps, denoising_end=fraction, guidance_scale=6.0, height=size,
                   width=size, generator=generator(seed), output_type="latent").images
    return refiner(prompt, image=latents, num_inference_steps=steps, denoising_start=fraction, guidance_scale=6.0,
                   generator=generator(seed), output_type="np").images


def matching_step(executor, sampler, steps, fraction) -> int:
    """The step k where diffusers' fraction cuts this schedule: the steps starting at or above the cutoff."""
    from latentgraph.nodes.schedulers import make_scheduler

    sched = make_scheduler(loaded(executor, "sdxl")[0].scheduler_config, *sampler, 0)
    sched.set_timesteps(steps)
    return int((sched.timesteps[::sched.order] >= round(1000 - 1000 * fraction)).sum())


@pytest.mark.parametrize("sampler", list(SPLIT_SAMPLERS), ids=lambda p: "-".join(p))
def test_base_then_refiner_equals_denoising_end_and_start(sdxl_executor, sampler):
    """40 steps, the base to 0.8 and the refiner from 0.8, against two KSamplerAdvanced nodes split at
    the matching step (32 on the uniform grid, 25 on Karras' grid, which is denser at low noise)."""
    sdxl_executor.run(sdxl_txt2img(steps=1))  # loads the models
    split = matching_step(sdxl_executor, sampler, 40, 0.8)
    assert split == {"normal": 32, "karras": 25}[sampler[1]]
    workflow = base_and_refiner(seed=5, steps=40, split=split, sampler_name=sampler[0], scheduler=sampler[1])
    ours = read_png(sdxl_executor.run(workflow).images[0]["path"])
    theirs = diffusers_base_then_refiner(sdxl_executor, SPLIT_SAMPLERS[sampler], 5, 40, 0.8, "a large red circle", 16)
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_second_order_split_as_fractions_equals_diffusers(sdxl_executor):
    """Heun (second order) with KSamplerSplit's fractions; its integer split is the same one."""
    workflow = base_and_refiner(seed=6, steps=40, split=32, sampler_name="heun", scheduler="normal")
    nodes = workflow["nodes"]
    for name, start, end in (("first", 0.0, 0.8), ("second", 0.8, 1.0)):
        inputs = nodes[name]["inputs"]
        nodes[name] = {"type": "KSamplerSplit", "inputs": {
            **{k: inputs[k] for k in ("model", "positive", "negative", "latent_image", "steps", "cfg",
                                      "sampler_name", "scheduler")},
            "seed": 6, "denoising_start": start, "denoising_end": end}}
    ours = read_png(sdxl_executor.run(workflow).images[0]["path"])
    theirs = diffusers_base_then_refiner(sdxl_executor, ("HeunDiscreteScheduler", {"timestep_spacing": "linspace"}),
                                         6, 40, 0.8, "a large red circle", 16)
    assert np.array_equal(ours, as_uint8(theirs)[0])
    # The same split given in steps gives the same image (a cached run: same node keys but the samplers').
    steps_version = read_png(sdxl_executor.run(
        base_and_refiner(seed=6, steps=40, split=32, sampler_name="heun", scheduler="normal")).images[0]["path"])
    assert np.array_equal(steps_version, ours)


def test_split_ranges_match_diffusers_for_every_sampler():
    """The entries each half runs, for every sampler, against diffusers' own rules on its timesteps."""
    from latentgraph.nodes.advanced_sampling import cut_at_fraction, cut_at_step, entry_range
    from latentgraph.nodes.schedulers import SAMPLERS, check_pair, make_scheduler
    from latentgraph.tiny_random import sdxl_components

    config = dict(sdxl_components()["scheduler"].config)
    for sampler_name in SAMPLERS:
        for schedule in ("normal", "karras"):
            if check_pair(sampler_name, schedule):
                continue
            for steps, fraction in ((40, 0.8), (25, 0.8), (10, 0.7)):
                sched = make_scheduler(config, sampler_name, schedule, 0)
                sched.set_timesteps(steps)
                k = int((sched.timesteps[::sched.order] >= round(1000 - 1000 * fraction)).sum())
                by_fraction = entry_range(sched, cut_at_fraction(sched, fraction), cut_at_fraction(sched, fraction))
                by_steps = entry_range(sched, cut_at_step(sched, steps, k), cut_at_step(sched, steps, k))
                # diffusers: the base keeps t >= cutoff; the refiner the rest (+1 for even second-order counts).
                cutoff = round(1000 - 1000 * fraction)
                end = int((sched.timesteps >= cutoff).sum())
                count = int((sched.timesteps < cutoff).sum())
                count += sched.order == 2 and count % 2 == 0
                assert by_fraction == (len(sched.timesteps) - count, end), (sampler_name, schedule, steps)
                if sched.order == 1 or sampler_name == "heun":
                    assert by_steps == by_fraction, (sampler_name, schedule, steps)


def test_refiner_conditioning_and_aesthetic_score(sdxl_executor):
    """CLIPTextEncodeSDXLRefiner's ascore and size reach the refiner as diffusers' time ids."""
    workflow = base_and_refiner(seed=7, steps=10, split=8, size=16)
    nodes = workflow["nodes"]
    nodes["rpos"] = {"type": "CLIPTextEncodeSDXLRefiner", "inputs": {
        "ascore": 7.5, "width": 64, "height": 48, "text": "a large red circle", "clip": ref("refiner", "CLIP")}}
    nodes["rneg"] = {"type": "CLIPTextEncodeSDXLRefiner", "inputs": {
        "ascore": 2.0, "width": 64, "height": 48, "text": "", "clip": ref("refiner", "CLIP")}}
    ours = read_png(sdxl_executor.run(workflow).images[0]["path"])
    flags = ("EulerDiscreteScheduler", {"timestep_spacing": "linspace"})
    base = pipeline(sdxl_executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(sdxl_executor, "sdxl", flags[0], **flags[1]))
    refiner = pipeline(sdxl_executor, diffusers.StableDiffusionXLImg2ImgPipeline, "sdxl_refiner",
                       scheduler_for(sdxl_executor, "sdxl_refiner", flags[0], **flags[1]))
    latents = base("a large red circle", num_inference_steps=10, denoising_end=0.8, guidance_scale=6.0, height=16,
                   width=16, generator=generator(7), output_type="latent").images
    theirs = refiner("a large red circle", image=latents, num_inference_steps=10, denoising_start=0.8,
                     guidance_scale=6.0, original_size=(48, 64), negative_original_size=(48, 64),
                     aesthetic_score=7.5, negative_aesthetic_score=2.0, generator=generator(7), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_base_conditioning_on_the_refiner_is_refused_clearly(sdxl_executor):
    workflow = copy.deepcopy(base_and_refiner(steps=4, split=2))
    workflow["nodes"]["second"]["inputs"]["positive"] = ref("pos", "CONDITIONING")
    with pytest.raises(NodeError) as err:
        sdxl_executor.run(workflow)
    assert "refiner has its own" in str(err.value) and err.value.error.node_id == "second"


def test_base_size_conditioning_on_the_refiner_is_refused_clearly(sdxl_executor):
    workflow = base_and_refiner(steps=4, split=2)
    workflow["nodes"]["rpos"] = {"type": "CLIPTextEncodeSDXL", "inputs": {
        "clip": ref("refiner", "CLIP"), "width": 16, "height": 16, "crop_w": 0, "crop_h": 0, "target_width": 16,
        "target_height": 16, "text_g": "a circle", "text_l": "a circle"}}
    with pytest.raises(NodeError) as err:
        sdxl_executor.run(workflow)
    assert "CLIPTextEncodeSDXLRefiner" in str(err.value) and err.value.error.input == "positive"


def test_leftover_noise_disabled_ends_on_the_denoised_estimate(sdxl_executor):
    """Stopping early without leftover noise returns the last step's x0 prediction (Euler's
    pred_original_sample), as ComfyUI's full denoise of the range does."""
    workflow = base_and_refiner(seed=8, steps=10, split=6, size=16)
    nodes = workflow["nodes"]
    nodes["decode"]["inputs"] = {"samples": ref("first", "LATENT"), "vae": ref("base", "VAE")}
    nodes["first"]["inputs"]["return_with_leftover_noise"] = "disable"
    ours = read_png(sdxl_executor.run(workflow).images[0]["path"])

    base = pipeline(sdxl_executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(sdxl_executor, "sdxl", "EulerDiscreteScheduler", timestep_spacing="linspace"))
    captured = {}
    original_step = base.scheduler.step

    def step(*args, **kwargs):
        out = original_step(*args, **{**kwargs, "return_dict": True})
        captured["x0"] = out.pred_original_sample
        return out if kwargs.get("return_dict", True) else (out.prev_sample,)

    base.scheduler.step = step
    base("a large red circle", num_inference_steps=10, denoising_end=0.6, guidance_scale=6.0, height=16, width=16,
         generator=generator(8), output_type="latent")
    with torch.inference_mode():
        image = base.vae.decode(captured["x0"] / base.vae.config.scaling_factor, return_dict=False)[0]
    theirs = (image / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().numpy()
    assert np.array_equal(ours, as_uint8(theirs)[0])
