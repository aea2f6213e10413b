"""Samplers: the denoising loop of diffusers' pipelines, run by the node with a diffusers scheduler.

For the same model, seed, scheduler, steps and guidance, KSampler's latents equal those of
`StableDiffusionPipeline` (txt2img) and `StableDiffusionImg2ImgPipeline` (denoise < 1 on an encoded
image, diffusers' `strength`): the same calls in the same order, the same CPU generator.
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import json

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes import prompt_weights
from latentgraph.nodes.controlnet import Controls
from latentgraph.nodes.lora import adapters_active
from latentgraph.nodes.regions import active_groups, weighted_predictor
from latentgraph.nodes.schedulers import (
    REFUSED_SAMPLERS,
    REFUSED_SCHEDULES,
    SAMPLER_NAMES,
    SCHEDULER_NAMES,
    SEEDED_SAMPLERS,
    check_pair,
    make_scheduler,
)
from latentgraph.nodes.spec import COMBO, CONDITIONING, FLOAT, INT, LATENT, MODEL, SEED_MAX, Input, Output, node
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


MODEL_INPUT = Input("model", MODEL, tooltip="The denoising model (from a checkpoint loader).")
CFG_INPUT = Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1, round=0.01,
                  tooltip="Classifier-free guidance scale; 1 or less runs the positive prompt alone.")


def seed_input(name: str, tooltip: str = "Seeds the CPU generator (the initial noise, and the noise of "
                                         "ancestral/SDE samplers).") -> Input:
    return Input(name, INT, default=0, min=0, max=SEED_MAX, control_after_generate=True, tooltip=tooltip)


def check_sampler_pair(values: dict) -> list[tuple[str, str]]:
    reason = check_pair(values["sampler_name"], values["scheduler"])
    return [("scheduler", reason)] if reason else []


def pixel_size(model: DiffusionModel, shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) in pixels of latents of this shape."""
    return shape[-2] * model.vae_scale_factor, shape[-1] * model.vae_scale_factor


def _time_ids(cond: Conditioning, model: DiffusionModel, size: tuple[int, int], negative: bool) -> list[float]:
    """SDXL's size (and, for the refiner, aesthetic score) conditioning, as diffusers'
    `_get_add_time_ids` builds it when the caller gives no sizes."""
    if cond.time_ids is not None:
        return list(cond.time_ids)
    if model.family == "sdxl_refiner":
        score = cond.aesthetic_score if cond.aesthetic_score is not None else (2.5 if negative else 6.0)
        return [*size, 0, 0, score]
    return [*size, 0, 0, *size]


def _check_conditioning(model: DiffusionModel, cond: Conditioning, name: str) -> None:
    if model.family in SDXL_FAMILIES and cond.pooled is None:
        raise InputError(name, "this SDXL model needs SDXL conditioning: encode the prompt with the same "
                               "checkpoint's CLIP")
    width = model.unet.config.cross_attention_dim
    if isinstance(width, int) and cond.embeds.shape[-1] != width:
        raise InputError(name, f"this conditioning is {cond.embeds.shape[-1]} wide, but the model takes {width}: "
                               "encode the prompt with the same checkpoint's CLIP (the SDXL refiner has its own)")
    if model.family in SDXL_FAMILIES and cond.time_ids is not None:
        wanted = 5 if model.family == "sdxl_refiner" else 6
        if len(cond.time_ids) != wanted:
            node = "CLIPTextEncodeSDXLRefiner" if wanted == 5 else "CLIPTextEncodeSDXL"
            raise InputError(name, f"this size conditioning has {len(cond.time_ids)} numbers, but this "
                                   f"{model.family} model takes {wanted}: encode with {node} or CLIPTextEncode")


def _guidance_tensors(model: DiffusionModel, cond: Conditioning, negative: bool):
    """(embeds, pooled) of one half of the batch. An empty SDXL negative from a checkpoint that asks
    for it is zeros (diffusers' force_zeros_for_empty_prompt with no negative prompt)."""
    if negative and cond.empty_prompt and model.family in SDXL_FAMILIES:
        return torch.zeros_like(cond.embeds), torch.zeros_like(cond.pooled)
    return cond.embeds, cond.pooled


def guidance_batch(model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float,
                   batch: int, size: tuple[int, int], device, dtype):
    """(encoder_hidden_states, added_cond_kwargs, do_cfg) for a batch, unconditional half first."""
    do_cfg = cfg > 1.0  # as diffusers: guidance_scale <= 1 runs the positive prompt alone
    conds = [(negative, True), (positive, False)] if do_cfg else [(positive, False)]
    return *guidance_rows(model, conds, batch, size, device, dtype), do_cfg


def guidance_rows(model: DiffusionModel, conds: list[tuple[Conditioning, bool]], batch: int,
                  size: tuple[int, int], device, dtype):
    """(encoder_hidden_states, added_cond_kwargs) with `batch` rows per (conditioning, is negative)."""
    for cond, neg in conds:
        _check_conditioning(model, cond, "negative" if neg else "positive")
    halves = [(_guidance_tensors(model, c, neg), c, neg) for c, neg in conds]
    sequences = prompt_weights.pad_to_common_length([e for (e, _), _, _ in halves])  # long prompts
    embeds = torch.cat([e.to(device=device, dtype=dtype).repeat(batch // e.shape[0] or 1, 1, 1) for e in sequences])
    if model.family not in SDXL_FAMILIES:
        return embeds, None
    pooled = torch.cat([p.to(device=device, dtype=dtype).repeat(batch // p.shape[0] or 1, 1)
                        for (_, p), _, _ in halves])
    time_ids = torch.cat([torch.tensor([_time_ids(c, model, size, neg)], dtype=dtype).to(device).repeat(batch, 1)
                          for _, c, neg in halves])
    return embeds, {"text_embeds": pooled, "time_ids": time_ids}


def guided_predictor(model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float,
                     batch: int, size: tuple[int, int], device, dtype):
    """`predict(scheduler, latents, t, step, total)`: the noise prediction at step `step` of `total`,
    guided by cfg, as in diffusers' pipelines' `__call__` (the prompt and the negative in one batch,
    ControlNets attached to them adding their residuals), or `combined_predictor`'s where a side
    holds several prompts or timestep ranges."""
    combined = combined_predictor(model, positive, negative, cfg, batch, size, device, dtype)
    if combined is not None:
        return combined
    embeds, added, do_cfg = guidance_batch(model, positive, negative, cfg, batch, size, device, dtype)
    groups, names = ([negative, positive], ["negative", "positive"]) if do_cfg else ([positive], ["positive"])
    controls = Controls(model, groups, batch, size, names)

    def predict(scheduler, latents, t, step: int = 0, total: int = 1):
        model_input = torch.cat([latents] * 2) if do_cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        residuals = controls.residuals(model_input, t, embeds, added, step, total, list(range(len(groups))))
        noise_pred = model.denoiser(model_input, t, encoder_hidden_states=embeds, timestep_cond=None,
                                cross_attention_kwargs=None, added_cond_kwargs=added, return_dict=False,
                                **residuals)[0]
        if do_cfg:
            uncond, cond = noise_pred.chunk(2)
            noise_pred = model.guide(uncond, cond, cfg)
        return noise_pred
    return predict


def combined_predictor(model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float,
                       batch: int, size: tuple[int, int], device, dtype):
    """`predict(scheduler, latents, t, step, total)` for conditionings of several prompts
    (ConditioningCombine) or with timestep ranges, as ComfyUI samples them: the predictions of the
    prompts active at the step are averaged, on each side of the guidance. None where each side is one
    prompt for all steps."""
    do_cfg = cfg > 1.0
    negatives = negative.entries() if do_cfg else []
    positives = positive.entries()
    everyone = negatives + positives
    if len(negatives) <= 1 and len(positives) == 1 and all(c.timestep_range is None and not c.weighted
                                                            for c in everyone):
        return None
    embeds, added = guidance_rows(model, [(c, True) for c in negatives] + [(c, False) for c in positives],
                                  batch, size, device, dtype)
    names = ["negative"] * len(negatives) + ["positive"] * len(positives)
    controls = Controls(model, everyone, batch, size, names)
    if any(c.weighted for c in everyone):
        return weighted_predictor(model, everyone, names, len(negatives), do_cfg, cfg, embeds, added, controls, batch)

    def predict(scheduler, latents, t, step: int = 0, total: int = 1):
        # rows of `embeds`: the negatives' first, then the positives'
        uncond_rows, cond_rows = active_groups(everyone, len(negatives), do_cfg, t)
        rows = uncond_rows + cond_rows
        index = torch.cat([torch.arange(r * batch, (r + 1) * batch) for r in rows]).to(device)
        model_input = scheduler.scale_model_input(torch.cat([latents] * len(rows)), t)
        added_rows = {k: v[index] for k, v in added.items()} if added else None
        residuals = controls.residuals(model_input, t, embeds[index], added_rows, step, total, rows)
        out = model.denoiser(model_input, t, encoder_hidden_states=embeds[index], timestep_cond=None,
                         cross_attention_kwargs=None, added_cond_kwargs=added_rows, return_dict=False,
                         **residuals)[0].chunk(len(rows))
        cond = torch.stack(out[len(uncond_rows):]).mean(0)
        if not do_cfg:
            return cond
        uncond = torch.stack(out[:len(uncond_rows)]).mean(0)
        return model.guide(uncond, cond, cfg)
    return predict


def initial_samples(latent: Latent, model: DiffusionModel, generator: torch.Generator, device, dtype,
                    inpaint: bool = False) -> torch.Tensor:
    """The clean latents an img2img start adds noise to. An encoded image is sampled from its
    distribution with the run's generator first, as diffusers' img2img `prepare_latents` does."""
    if latent.dist is not None:
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        dist = DiagonalGaussianDistribution(latent.dist)
        samples = (dist.sample(generator) - latent.shift_factor) * latent.scaling_factor
        # torch.cat, as diffusers' img2img, keeps the encoder's memory layout, and with it the
        # convolution kernels the UNet picks and the last bits of its output; its inpaint pipeline
        # uses repeat, which does not.
        copies = latent.batch_size // samples.shape[0]
        samples = samples.repeat(copies, 1, 1, 1) if inpaint else torch.cat([samples] * copies, dim=0)
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


def denoised_estimate(scheduler, output, noise_pred, t, sample) -> torch.Tensor:
    """The clean latents a step's model output implies: the scheduler's own x0 prediction where its
    step returns one; otherwise (DPM-Solver, UniPC, DEIS, PNDM: variance-preserving latents) from
    the noise schedule's alpha at t."""
    for name in ("pred_original_sample", "denoised"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    alpha = scheduler.alphas_cumprod.to(sample.device)[int(t)].to(sample.dtype)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (sample - (1 - alpha).sqrt() * noise_pred) / alpha.sqrt()
    if kind == "v_prediction":
        return alpha.sqrt() * sample - (1 - alpha).sqrt() * noise_pred
    return noise_pred


def denoise_loop(ctx, model: DiffusionModel, scheduler, timesteps, latents, predict, generator,
                 finish: bool = False, after_step=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The loop in diffusers' pipelines' `__call__`, with progress, previews and interrupts: the
    latents after the last step and that step's denoised estimate (the clean latent it implies).
    `predict(scheduler, latents, t, step, total)` gives the guided noise prediction (`guided_predictor`).
    `finish`: return the denoised estimate as the latents too, instead of the still noisy result
    (ComfyUI's full denoise of a range that stops before the end of the schedule). `after_step(i,
    latents)` may change the latents after each step (inpainting)."""
    extra = step_kwargs(scheduler, generator)
    total = len(timesteps)
    denoised = latents
    for i, t in enumerate(timesteps):
        ctx.check_interrupt()
        noise_pred = predict(scheduler, latents, t, i, total)
        if i == total - 1:
            output = scheduler.step(noise_pred, t, latents, **extra, return_dict=True)
            denoised = denoised_estimate(scheduler, output, noise_pred, t, latents)
            latents = denoised if finish else output.prev_sample
        else:
            latents = scheduler.step(noise_pred, t, latents, **extra, return_dict=False)[0]
        if after_step is not None:
            latents = after_step(i, latents)
        ctx.progress(i + 1, total, preview=(lambda x=latents: model.previewer(x)) if model.previewer else None)
    if not torch.isfinite(latents).all():  # else it would be saved as a silently black picture
        raise InputError("sampler_name", "the sampler's result holds NaN or infinite values: try another sampler or "
                                         "scheduler (float16 overflows too: try --dtype float32)")
    return latents, denoised


def check_latent(latent: Latent, model: DiffusionModel) -> None:
    channels = model.unet.config.in_channels
    if latent.samples is not None and latent.samples.shape[1] != channels:
        raise InputError("latent_image", f"has {latent.samples.shape[1]} channels, but this model's latents have "
                                         f"{channels}: was it made with another model's VAE?")
    f = model.vae_scale_factor
    if latent.samples is None and (latent.width % f or latent.height % f):
        raise InputError("latent_image", f"{latent.width}x{latent.height} is not a multiple of this model's "
                                         f"VAE scale factor {f}")


_SCHEDULES: dict[tuple, object] = {}  # unused schedulers with their timesteps set, copied for each run
_SCHEDULES_KEPT = 64


def new_schedule(model: DiffusionModel, sampler_name: str, scheduler: str, seed: int, steps: int):
    """A fresh scheduler with its timesteps set for `steps`. Each one is built once per noise schedule,
    sampler, grid, steps and device, and copied for every run: schedulers keep step state, and a copy of
    one never stepped is what building it anew gives, at a tenth of the cost."""
    device = model.device
    key = (json.dumps(model.scheduler_config, sort_keys=True, default=str), sampler_name, scheduler, steps,
           str(device), seed if sampler_name in SEEDED_SAMPLERS else None)
    template = _SCHEDULES.get(key)
    if template is None:
        template = make_scheduler(model.scheduler_config, sampler_name, scheduler, seed)
        template.set_timesteps(steps, device=device)
        if len(_SCHEDULES) >= _SCHEDULES_KEPT:
            _SCHEDULES.pop(next(iter(_SCHEDULES)))
        _SCHEDULES[key] = template
    return copy.deepcopy(template)


def run_entries(ctx, model: DiffusionModel, sched, seed: int, cfg: float, positive: Conditioning,
                negative: Conditioning, latent_image: Latent, first: int, last: int, add_noise: bool,
                finish: bool = False) -> tuple[Latent, Latent]:
    """Denoise with the entries [first, last) of the scheduler's timesteps, as diffusers' pipelines do.

    With `add_noise`, a blank latent started at the first entry is pure noise at the first noise level
    (txt2img's prepare_latents); any other start noises the latent to the level of its first entry
    (img2img's prepare_latents). Without it, the latent is denoised as it is (the SDXL refiner given
    `denoising_start`). An encoded image is first drawn from its distribution with the seeded generator.
    Returns the resulting latent and the last step's estimate of the clean latent."""
    from diffusers.utils.torch_utils import randn_tensor

    check_latent(latent_image, model)
    device = model.device
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = latent_shape(latent_image, model)
    dtype = model.dtype
    predict = guided_predictor(model, positive, negative, cfg, shape[0], pixel_size(model, shape), device, dtype)
    timesteps = sched.timesteps[first:last]
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(first)
    after_step = None
    if latent_image.noise_mask is not None and add_noise:
        latents, after_step = inpaint_start(latent_image, model, sched, timesteps, first, generator, device, dtype)
    elif add_noise and first == 0 and latent_image.samples is None and latent_image.dist is None:
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype) * sched.init_noise_sigma
    else:
        latents = initial_samples(latent_image, model, generator, device, dtype)
        if len(timesteps) == 0:
            out = latent_image.replace(samples=latents, dist=None)
            return out, out
        if add_noise:
            noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=dtype)
            latents = sched.add_noise(latents, noise, timesteps[:1].repeat(latents.shape[0]))
    with adapters_active(model.unet, model.adapters), freeu_active(model), step_cache_active(model, predict) as predict:
        latents, denoised = denoise_loop(ctx, model, sched, timesteps, latents, predict, generator, finish, after_step)
    return latent_image.replace(samples=latents, dist=None), latent_image.replace(samples=denoised, dist=None)


@contextlib.contextmanager
def freeu_active(model: DiffusionModel):
    """FreeU switched on in the shared UNet for this model's sampling only (runs do not overlap)."""
    if not model.freeu:
        yield
        return
    model.unet.enable_freeu(**model.freeu)
    try:
        yield
    finally:
        model.unet.disable_freeu()


@contextlib.contextmanager
def step_cache_active(model: DiffusionModel, predict):
    """The model's step cache (DeepCache, first-block cache) switched on in the shared UNet for this
    sampler's loop only; yields the predictor, which tells the cache each step."""
    if model.step_cache is None:
        yield predict
        return
    session = model.step_cache.session(model.unet)

    def stepped(scheduler, latents, t, step: int = 0, total: int = 1):
        session.begin_step(step, float(t))
        return predict(scheduler, latents, t, step, total)
    with session.installed():
        yield stepped


def latent_mask(mask: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """A pixel mask at the latents' size, as diffusers' inpaint pipeline makes it: binarized at 0.5,
    then resized by nearest neighbour."""
    binary = (mask >= 0.5).to(torch.float32)[:, None]
    return F.interpolate(binary, size=latents.shape[-2:]).to(device=latents.device, dtype=latents.dtype)


def inpaint_start(latent: Latent, model: DiffusionModel, sched, timesteps, first: int, generator, device, dtype):
    """Initial latents and the per-step blend of diffusers' StableDiffusionInpaintPipeline with a
    4-channel UNet: after each step, the unmasked part is put back as the original latent noised
    to the next step's level (clean after the last). The random draws come in the pipeline's order:
    the image's latent, the noise, then one draw for the masked image that the pipeline also
    encodes (unused by a 4-channel UNet, but it moves the generator that ancestral samplers use)."""
    from diffusers.utils.torch_utils import randn_tensor

    if timesteps.numel() == 0:
        raise InputError("latent_image", "inpainting needs at least one step to denoise")
    original = initial_samples(latent, model, generator, device, dtype, inpaint=True)
    noise = randn_tensor(original.shape, generator=generator, device=device, dtype=dtype)
    if latent.dist is not None:
        randn_tensor((latent.dist.shape[0], latent.dist.shape[1] // 2, *latent.dist.shape[2:]), generator=generator,
                     device=latent.dist.device, dtype=latent.dist.dtype)
    mask = latent_mask(latent.noise_mask, original)
    if first == 0:  # full denoise: pure noise, as the pipeline at strength 1
        latents = noise * sched.init_noise_sigma
    else:
        latents = sched.add_noise(original, noise, timesteps[:1].repeat(original.shape[0]))

    def blend(i: int, current: torch.Tensor) -> torch.Tensor:
        kept = original
        if i < len(timesteps) - 1:
            kept = sched.add_noise(original, noise, torch.tensor([timesteps[i + 1]]))
        return (1 - mask) * kept + mask * current
    return latents, blend


def ksampler(ctx, model: DiffusionModel, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
             positive: Conditioning, negative: Conditioning, latent_image: Latent, denoise: float = 1.0):
    sched = new_schedule(model, sampler_name, scheduler, seed, steps)
    # img2img skips the first (1 - denoise) of the steps (diffusers' get_timesteps, strength = denoise);
    # a blank latent at full denoise is txt2img.
    t_start = max(steps - min(int(steps * denoise), steps), 0)
    return run_entries(ctx, model, sched, seed, cfg, positive, negative, latent_image, t_start * sched.order,
                       len(sched.timesteps), add_noise=True)[:1]


node("KSampler", category="sampling",
     description="Denoises a latent with a diffusers scheduler, guided by a positive and a negative prompt. "
                 "denoise < 1 on an encoded image is img2img (diffusers' strength).",
     inputs=[
         MODEL_INPUT,
         seed_input("seed", "Seeds the CPU generator that draws the noise, as diffusers does."),
         Input("steps", INT, default=20, min=1, max=10000, tooltip="Number of denoising steps."),
         CFG_INPUT,
         *sampler_inputs(),
         Input("positive", CONDITIONING, tooltip="What the image should show."),
         Input("negative", CONDITIONING, tooltip="What it should not show (often an empty prompt)."),
         Input("latent_image", LATENT, tooltip="An empty latent (txt2img) or an encoded image (img2img)."),
         Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
               tooltip="How much of the schedule to run; below 1 keeps part of the input image."),
     ],
     outputs=[Output("LATENT", LATENT)],
     check=check_sampler_pair)(ksampler)
