"""Samplers that run part of a schedule: the SDXL base -> refiner hand-off.

diffusers splits one schedule between two pipelines with a fraction of the training timesteps:
the base (`denoising_end=f`) runs the timesteps at or above cutoff = round(1000 - 1000 f) and
returns its still noisy latents; the refiner (`denoising_start=f`) runs the timesteps below the
cutoff (one more for a second-order scheduler when their count is even), without adding noise.

`KSamplerAdvanced` gives the split as ComfyUI does, in steps: `end_at_step=k` on the base and
`start_at_step=k` on the refiner cut the schedule just above the timestep of step k, which is the
split diffusers makes for any fraction whose cutoff falls between steps k-1 and k (0.8 of 40
steps is k=32 on the uniform grid, 25 on Karras' grid, which is denser at low noise). `KSamplerSplit` takes
diffusers' fractions themselves. See docs/sdxl.md.
"""
from __future__ import annotations

from latentgraph.lazy import torch
from latentgraph.nodes.sampling import (
    CFG_INPUT,
    MODEL_INPUT,
    check_sampler_pair,
    new_schedule,
    run_entries,
    sampler_inputs,
    seed_input,
)
from latentgraph.nodes.spec import COMBO, CONDITIONING, FLOAT, INT, LATENT, Input, Output, node
from latentgraph.nodes.values import Conditioning, DiffusionModel, Latent

ENABLE = ["enable", "disable"]
DISABLE = ["disable", "enable"]


def entry_range(sched, before_start: torch.Tensor | None, before_end: torch.Tensor | None) -> tuple[int, int]:
    """[first, last) entries of `sched.timesteps` between two cuts, with diffusers' rules. Each cut
    is a mask of the entries above it (None: no cut)."""
    total = len(sched.timesteps)
    last = total if before_end is None else int(before_end.sum())  # timesteps only decrease: a prefix
    if before_start is None:
        return 0, last
    count = total - int(before_start.sum())
    if sched.order == 2 and count % 2 == 0:
        # diffusers' refiner: do not start between the two halves of a second-order step.
        count = min(count + 1, total)
    return total - count, last


def cut_at_step(sched, steps: int, step: int) -> torch.Tensor | None:
    """The entries before step `step`: those above its timestep (its first entry is step * order)."""
    if step >= steps:
        return None
    timesteps = sched.timesteps
    return timesteps > timesteps[step * sched.order]


def cut_at_fraction(sched, fraction: float) -> torch.Tensor | None:
    """diffusers' cut at a fraction of the training timesteps (denoising_end / denoising_start)."""
    if not 0.0 < fraction < 1.0:
        return None
    train = sched.config.num_train_timesteps
    cutoff = round(train - fraction * train)
    return sched.timesteps >= cutoff


def ksampler_advanced(ctx, model: DiffusionModel, add_noise: str, noise_seed: int, steps: int, cfg: float,
                      sampler_name: str, scheduler: str, positive: Conditioning, negative: Conditioning,
                      latent_image: Latent, start_at_step: int, end_at_step: int, return_with_leftover_noise: str):
    sched = new_schedule(model, sampler_name, scheduler, noise_seed, steps)
    start = cut_at_step(sched, steps, start_at_step) if start_at_step > 0 else None
    first, last = entry_range(sched, start, cut_at_step(sched, steps, end_at_step))
    if first >= last:  # nothing to run: ComfyUI hands the latent on unchanged
        return (latent_image,)
    # Stopping early without leftover noise ends on the last step's denoised estimate, as ComfyUI's
    # full denoise does (it sets the last noise level of the range to 0).
    finish = return_with_leftover_noise == "disable" and last < len(sched.timesteps)
    return run_entries(ctx, model, sched, noise_seed, cfg, positive, negative, latent_image, first, last,
                       add_noise=add_noise == "enable", finish=finish)[:1]


def ksampler_split(ctx, model: DiffusionModel, seed: int, steps: int, cfg: float, sampler_name: str,
                   scheduler: str, positive: Conditioning, negative: Conditioning, latent_image: Latent,
                   denoising_start: float, denoising_end: float):
    sched = new_schedule(model, sampler_name, scheduler, seed, steps)
    start = cut_at_fraction(sched, denoising_start)
    first, last = entry_range(sched, start, cut_at_fraction(sched, denoising_end))
    if first >= last:
        return (latent_image,)
    # As diffusers: noise is added only when starting from the top (no denoising_start).
    return run_entries(ctx, model, sched, seed, cfg, positive, negative, latent_image, first, last,
                       add_noise=start is None)[:1]


def model_inputs(seed_name: str) -> list[Input]:
    return [
        MODEL_INPUT,
        seed_input(seed_name),
        Input("steps", INT, default=20, min=1, max=10000,
              tooltip="Steps of the whole schedule; this node runs part of them."),
        CFG_INPUT,
        *sampler_inputs(),
        Input("positive", CONDITIONING, tooltip="What the image should show."),
        Input("negative", CONDITIONING, tooltip="What it should not show."),
        Input("latent_image", LATENT, tooltip="An empty latent, an encoded image, or the base's noisy latent."),
    ]


def check_fractions(values: dict) -> list[tuple[str, str]]:
    problems = check_sampler_pair(values)
    start, end = values["denoising_start"], values["denoising_end"]
    if 0.0 < start < 1.0 and 0.0 < end < 1.0 and start >= end:
        problems.append(("denoising_start", f"{start} must be below denoising_end {end}"))
    return problems


node("KSamplerAdvanced", category="sampling",
     description="Runs steps [start_at_step, end_at_step) of a schedule: the SDXL base ends at step k with "
                 "leftover noise, the refiner starts at k without adding noise. The split is diffusers' "
                 "denoising_end / denoising_start split (0.8 of 40 steps is k=32 on the normal grid, 25 on "
                 "the karras grid).",
     inputs=[
         MODEL_INPUT,
         Input("add_noise", COMBO, default="enable", choices=ENABLE,
               tooltip="enable: noise the latent to the first step's level (txt2img, img2img); disable: continue "
                       "a latent that still holds its noise (the refiner)."),
         *model_inputs("noise_seed")[1:],
         Input("start_at_step", INT, default=0, min=0, max=10000, tooltip="First step run (0: the start)."),
         Input("end_at_step", INT, default=10000, min=0, max=10000,
               tooltip="Step where this node stops (at or beyond steps: the end)."),
         Input("return_with_leftover_noise", COMBO, default="disable", choices=DISABLE,
               tooltip="enable: hand on the noisy latent (the base before a refiner); disable: when stopping "
                       "early, return the last step's denoised estimate."),
     ],
     outputs=[Output("LATENT", LATENT)],
     check=check_sampler_pair)(ksampler_advanced)

node("KSamplerSplit", category="sampling",
     description="The diffusers way to split a schedule between two models: denoising_end < 1 on the base "
                 "returns a noisy latent (StableDiffusionXLPipeline), denoising_start > 0 on the refiner "
                 "continues it without adding noise (StableDiffusionXLImg2ImgPipeline).",
     display_name="KSampler (denoising start/end)",
     inputs=[
         *model_inputs("seed"),
         Input("denoising_start", FLOAT, default=0.0, min=0.0, max=1.0, step=0.01,
               tooltip="Fraction of the schedule already done (diffusers' denoising_start); 0: start from noise."),
         Input("denoising_end", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
               tooltip="Fraction of the schedule where this node stops (diffusers' denoising_end); 1: the end."),
     ],
     outputs=[Output("LATENT", LATENT)],
     check=check_fractions)(ksampler_split)
