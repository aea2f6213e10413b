"""Samplers: the denoising loop of diffusers' pipelines, run by the node with a diffusers scheduler.

For the same model, seed, scheduler, steps and guidance, KSampler's latents equal those of
`StableDiffusionPipeline` (txt2img) and `StableDiffusionImg2ImgPipeline` (denoise < 1 on an encoded
image, diffusers' `strength`): the same calls in the same order, the same CPU generator.
"""
from __future__ import annotations

import inspect

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.utils.torch_utils import randn_tensor

from latentgraph.graph.errors import InputError
from latentgraph.nodes.schedulers import (REFUSED_SAMPLERS, REFUSED_SCHEDULES, SAMPLER_NAMES, SCHEDULER_NAMES,
                                          check_pair, make_scheduler)
from latentgraph.nodes.spec import (COMBO, CONDITIONING, FLOAT, INT, LATENT, MODEL, SEED_MAX, Input, Output,
                                    node)
from latentgraph.nodes.values import Conditioning, DiffusionModel, Latent

SDXL_FAMILIES = ("sdxl", "sdxl_refiner")


def sampler_inputs() -> list[Input]:
    """Inputs shared by the sampler nodes, in ComfyUI's order."""
    return [
        Input("sampler_name", COMBO, default="euler", choices=SAMPLER_NAMES, refused_choices=REFUSED_SAMPLERS,
              tooltip="The solver: a diffusers scheduler class (see docs/samplers.md)."),
        Input("scheduler", COMBO, default="normal", choices=SCHEDULER_NAMES, refused_choices=REFUSED_SCHEDULES,
              tooltip="The grid of noise levels; 'default' keeps the checkpoint's own."),
    ]


def check_sampler_pair(values: dict) -> list[tuple[str, str]]:
    reason = check_pair(values["sampler_name"], values["scheduler"])
    return [("scheduler", reason)] if reason else []


def pixel_size(model: DiffusionModel, latents: torch.Tensor) -> tuple[int, int]:
    return latents.shape[-2] * model.vae_scale_factor, latents.shape[-1] * model.vae_scale_factor


def _time_ids(cond: Conditioning, model: DiffusionModel, size: tuple[int, int], negative: bool) -> list[float]:
    """SDXL's size (and, for the refiner, aesthetic score) conditioning, as diffusers'
    `_get_add_time_ids` builds it when the caller gives no sizes."""
    if cond.time_ids is not None:
        return list(cond.time_ids)
    if model.family == "sdxl_refiner":
        score = cond.aesthetic_score if cond.aesthetic_score is not None else (2.5 if negative else 6.0)
        return [*size, 0, 0, score]
    return [*size, 0, 0, *size]


def guidance_batch(model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float,
                   batch: int, size: tuple[int, int], device, dtype):
    """(encoder_hidden_states, added_cond_kwargs, do_cfg) for a batch, unconditional half first."""
    do_cfg = cfg > 1.0  # as diffusers: guidance_scale <= 1 runs the positive prompt alone
    conds = [(negative, True), (positive, False)] if do_cfg else [(positive, False)]
    for cond, _ in conds:
        if model.family in SDXL_FAMILIES and cond.pooled is None:
            raise InputError("positive", "this SDXL model needs SDXL conditioning: encode the prompt with the "
                                         "same checkpoint's CLIP")
    embeds = torch.cat([c.embeds.to(device=device, dtype=dtype).repeat(batch // c.embeds.shape[0] or 1, 1, 1)
                        for c, _ in conds])
    if model.family not in SDXL_FAMILIES:
        return embeds, None, do_cfg
    pooled = torch.cat([c.pooled.to(device=device, dtype=dtype).repeat(batch // c.pooled.shape[0] or 1, 1)
                        for c, _ in conds])
    time_ids = torch.cat([torch.tensor([_time_ids(c, model, size, neg)], dtype=dtype).to(device).repeat(batch, 1)
                          for c, neg in conds])
    return embeds, {"text_embeds": pooled, "time_ids": time_ids}, do_cfg


def initial_samples(latent: Latent, model: DiffusionModel, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """The clean latents an img2img start adds noise to. An encoded image is sampled from its
    distribution with the run's generator first, as diffusers' img2img `prepare_latents` does."""
    if latent.dist is not None:
        dist = DiagonalGaussianDistribution(latent.dist)
        samples = (dist.sample(generator) - latent.shift_factor) * latent.scaling_factor
        # torch.cat, as diffusers, keeps the encoder's memory layout (repeat would not), and with
        # it the convolution kernels the UNet picks and the last bits of its output.
        samples = torch.cat([samples] * (latent.batch_size // samples.shape[0]), dim=0)
        return samples.to(device=device, dtype=dtype)
    if latent.samples is not None:
        return latent.samples.to(device=device, dtype=dtype)
    return empty_samples(latent, model, device, dtype)


def empty_samples(latent: Latent, model: DiffusionModel, device, dtype) -> torch.Tensor:
    f = model.vae_scale_factor
    return torch.zeros(latent.batch_size, model.unet.config.in_channels, latent.height // f, latent.width // f,
                       device=device, dtype=dtype)


def latent_shape(latent: Latent, model: DiffusionModel) -> tuple[int, ...]:
    if latent.samples is not None:
        return tuple(latent.samples.shape)
    f = model.vae_scale_factor
    return (latent.batch_size, model.unet.config.in_channels, latent.height // f, latent.width // f)


def step_kwargs(scheduler, generator, eta: float = 0.0) -> dict:
    """What diffusers' `prepare_extra_step_kwargs` passes: eta and the generator, where accepted."""
    accepted = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


def denoise_loop(ctx, model: DiffusionModel, scheduler, timesteps, latents, embeds, added, do_cfg: bool, cfg: float,
                 generator) -> torch.Tensor:
    """The loop in diffusers' pipelines' `__call__`, with progress, previews and interrupts."""
    extra = step_kwargs(scheduler, generator)
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        ctx.check_interrupt()
        model_input = torch.cat([latents] * 2) if do_cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise_pred = model.unet(model_input, t, encoder_hidden_states=embeds, timestep_cond=None,
                                cross_attention_kwargs=None, added_cond_kwargs=added, return_dict=False)[0]
        if do_cfg:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + cfg * (cond - uncond)
        latents = scheduler.step(noise_pred, t, latents, **extra, return_dict=False)[0]
        current = latents
        ctx.progress(i + 1, total, preview=(lambda: model.previewer(current)) if model.previewer else None)
    return latents


def check_latent(latent: Latent, model: DiffusionModel) -> None:
    channels = model.unet.config.in_channels
    if latent.samples is not None and latent.samples.shape[1] != channels:
        raise InputError("latent_image", f"has {latent.samples.shape[1]} channels, but this model's latents have "
                                         f"{channels}: was it made with another model's VAE?")
    f = model.vae_scale_factor
    if latent.samples is None and (latent.width % f or latent.height % f):
        raise InputError("latent_image", f"{latent.width}x{latent.height} is not a multiple of this model's "
                                         f"VAE scale factor {f}")


def ksampler(ctx, model: DiffusionModel, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
             positive: Conditioning, negative: Conditioning, latent_image: Latent, denoise: float = 1.0):
    check_latent(latent_image, model)
    device, dtype = model.device, model.dtype
    sched = make_scheduler(model.scheduler_config, sampler_name, scheduler, seed)
    sched.set_timesteps(steps, device=device)
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = latent_shape(latent_image, model)
    embeds, added, do_cfg = guidance_batch(model, positive, negative, cfg, shape[0],
                                           (shape[-2] * model.vae_scale_factor, shape[-1] * model.vae_scale_factor),
                                           device, dtype)
    if latent_image.samples is None and latent_image.dist is None and denoise >= 1.0:
        # txt2img: pure noise at the first noise level (diffusers' prepare_latents).
        timesteps = sched.timesteps
        latents = randn_tensor(shape, generator=generator, device=device, dtype=embeds.dtype) * sched.init_noise_sigma
    else:
        # img2img: skip the first (1 - denoise) of the steps and noise the image to that level
        # (diffusers' get_timesteps and prepare_latents, `strength` = denoise).
        t_start = max(steps - min(int(steps * denoise), steps), 0)
        timesteps = sched.timesteps[t_start * sched.order:]
        if hasattr(sched, "set_begin_index"):
            sched.set_begin_index(t_start * sched.order)
        init = initial_samples(latent_image, model, generator, device, embeds.dtype)
        if len(timesteps) == 0:
            return (latent_image.replace(samples=init, dist=None),)
        noise = randn_tensor(init.shape, generator=generator, device=device, dtype=embeds.dtype)
        latents = sched.add_noise(init, noise, timesteps[:1].repeat(init.shape[0]))
    latents = denoise_loop(ctx, model, sched, timesteps, latents, embeds, added, do_cfg, cfg, generator)
    return (latent_image.replace(samples=latents, dist=None),)


node("KSampler", category="sampling",
     description="Denoises a latent with a diffusers scheduler, guided by a positive and a negative prompt. "
                 "denoise < 1 on an encoded image is img2img (diffusers' strength).",
     inputs=[
         Input("model", MODEL, tooltip="The denoising model (from a checkpoint loader)."),
         Input("seed", INT, default=0, min=0, max=SEED_MAX, control_after_generate=True,
               tooltip="Seeds the CPU generator that draws the noise, as diffusers does."),
         Input("steps", INT, default=20, min=1, max=10000, tooltip="Number of denoising steps."),
         Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
               tooltip="Classifier-free guidance scale; 1 or less runs the positive prompt alone."),
         *sampler_inputs(),
         Input("positive", CONDITIONING, tooltip="What the image should show."),
         Input("negative", CONDITIONING, tooltip="What it should not show (often an empty prompt)."),
         Input("latent_image", LATENT, tooltip="An empty latent (txt2img) or an encoded image (img2img)."),
         Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
               tooltip="How much of the schedule to run; below 1 keeps part of the input image."),
     ],
     outputs=[Output("LATENT", LATENT)],
     check=check_sampler_pair)(ksampler)
