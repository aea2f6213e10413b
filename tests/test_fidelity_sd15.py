"""The graph's images equal diffusers' own pipelines', bit for bit, for the same loaded modules."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, to_img2img, txt2img
from PIL import Image

# (sampler_name, scheduler) -> how a diffusers user sets up the same scheduler on the pipeline.
PAIRS = {
    ("euler", "normal"): ("EulerDiscreteScheduler", {"timestep_spacing": "linspace"}),
    ("euler_ancestral", "normal"): ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "linspace"}),
    ("dpmpp_2m", "karras"): ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True,
                                                             "timestep_spacing": "linspace"}),
    ("heun", "normal"): ("HeunDiscreteScheduler", {"timestep_spacing": "linspace"}),
    ("lms", "exponential"): ("LMSDiscreteScheduler", {"use_exponential_sigmas": True, "timestep_spacing": "linspace"}),
    ("dpm_2_ancestral", "karras"): ("KDPM2AncestralDiscreteScheduler",
                                    {"use_karras_sigmas": True, "timestep_spacing": "linspace"}),
    ("dpmpp_sde", "karras"): ("DPMSolverSDEScheduler",
                              {"use_karras_sigmas": True, "timestep_spacing": "linspace", "noise_sampler_seed": 3}),
    ("dpmpp_2m_sde", "normal"): ("DPMSolverMultistepScheduler",
                                 {"algorithm_type": "sde-dpmsolver++", "timestep_spacing": "linspace"}),
    ("uni_pc", "simple"): ("UniPCMultistepScheduler",
                           {"solver_type": "bh1", "final_sigmas_type": "sigma_min", "timestep_spacing": "trailing"}),
    ("ddim", "default"): ("DDIMScheduler", {}),
    ("pndm", "default"): ("PNDMScheduler", {}),
}


def reference_pipeline(executor, cls, sampler):
    ((model, clip, vae),) = executor.loaded_models()
    class_name, flags = PAIRS[sampler]
    scheduler = getattr(diffusers, class_name).from_config(model.scheduler_config, **flags)
    return cls(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
               scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def as_uint8(images: np.ndarray) -> np.ndarray:
    return (images * 255).round().astype("uint8")


@pytest.mark.parametrize("sampler", list(PAIRS), ids=lambda p: "-".join(p))
def test_txt2img_equals_stable_diffusion_pipeline(executor, sampler):
    seed = 3
    workflow = txt2img(prompt="a large red circle on a blue background", negative="green", seed=seed, steps=7,
                       cfg=6.5, sampler_name=sampler[0], scheduler=sampler[1])
    result = executor.run(workflow)
    ours = read_png(result.images[0]["path"])

    pipe = reference_pipeline(executor, diffusers.StableDiffusionPipeline, sampler)
    theirs = pipe("a large red circle on a blue background", negative_prompt="green", num_inference_steps=7,
                  guidance_scale=6.5, height=64, width=64, generator=torch.Generator("cpu").manual_seed(seed),
                  output_type="np").images
    assert np.isfinite(theirs).all() and ours.std() > 1  # two equal black pictures prove nothing
    assert ours.shape == theirs[0].shape[:2] + (3,)
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_batch_of_two_equals_num_images_per_prompt(executor):
    workflow = txt2img(seed=11, steps=5, batch_size=2)
    result = executor.run(workflow)
    ours = [read_png(image["path"]) for image in result.images]
    pipe = reference_pipeline(executor, diffusers.StableDiffusionPipeline, ("euler", "normal"))
    theirs = as_uint8(pipe("a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=6.0, height=64,
                           width=64, num_images_per_prompt=2, generator=torch.Generator("cpu").manual_seed(11),
                           output_type="np").images)
    assert len(ours) == 2 and not np.array_equal(ours[0], ours[1])
    assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("sampler", [("euler", "normal"), ("dpmpp_2m", "karras"), ("ddim", "default")],
                         ids=lambda p: "-".join(p))
def test_img2img_equals_img2img_pipeline(executor, settings, sampler):
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    picture.save(settings.input / "start.png")
    workflow = to_img2img(txt2img(seed=5, steps=10, cfg=7.0, sampler_name=sampler[0], scheduler=sampler[1]),
                          "start.png", 0.6)
    ours = read_png(executor.run(workflow).images[0]["path"])

    pipe = reference_pipeline(executor, diffusers.StableDiffusionImg2ImgPipeline, sampler)
    theirs = pipe("a red circle", image=picture, strength=0.6, negative_prompt="", num_inference_steps=10,
                  guidance_scale=7.0, generator=torch.Generator("cpu").manual_seed(5), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_clip_skip_equals_pipeline_clip_skip(executor):
    workflow = txt2img(seed=9, steps=4)
    nodes = workflow["nodes"]
    nodes["skip"] = {"type": "CLIPSetLastLayer", "inputs": {"clip": {"node": "ckpt", "output": "CLIP"},
                                                             "stop_at_clip_layer": -2}}
    # diffusers applies clip_skip to the prompt only, not to the negative prompt.
    nodes["pos"]["inputs"]["clip"] = {"node": "skip", "output": "CLIP"}
    ours = read_png(executor.run(workflow).images[0]["path"])
    pipe = reference_pipeline(executor, diffusers.StableDiffusionPipeline, ("euler", "normal"))
    encoder = pipe.text_encoder
    if not hasattr(encoder, "text_model"):
        # diffusers 0.42 reaches the final layer norm through `.text_model`, which transformers 5
        # flattened away; alias it (outside nn.Module's registry) so its clip_skip path runs.
        object.__setattr__(encoder, "text_model", encoder)
    kwargs = dict(negative_prompt="", num_inference_steps=4, guidance_scale=6.0, height=64, width=64,
                  output_type="np")
    theirs = pipe("a red circle", clip_skip=1, generator=torch.Generator("cpu").manual_seed(9), **kwargs).images
    unskipped = pipe("a red circle", generator=torch.Generator("cpu").manual_seed(9), **kwargs).images
    assert np.array_equal(ours, as_uint8(theirs)[0])
    assert not np.array_equal(ours, as_uint8(unskipped)[0])
