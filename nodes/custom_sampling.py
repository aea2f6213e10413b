"""ComfyUI's custom sampling nodes: the sampler, the noise levels, the noise and the guidance as
separate nodes (KSamplerSelect, BasicScheduler, SplitSigmas, RandomNoise, CFGGuider, ...), joined by
SamplerCustom or SamplerCustomAdvanced.

In ComfyUI a SIGMAS value is a list of noise levels. Here the solver is a diffusers scheduler that
builds its own grid (a second-order one repeats timesteps), so SIGMAS names a grid and the steps of
it to run: `BasicScheduler` the whole grid (or its last steps, `denoise` < 1, as KSampler's
img2img), `SplitSigmas` its first and last steps, and the sampler node builds the scheduler from
the sampler it is given and runs those steps, exactly as KSampler / KSamplerAdvanced run them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from latentgraph.graph.errors import InputError
from latentgraph.nodes.advanced_sampling import cut_at_step, entry_range
from latentgraph.nodes.sampling import CFG_INPUT, MODEL_INPUT, new_schedule, run_entries, sampler_inputs, seed_input
from latentgraph.nodes.schedulers import check_pair
from latentgraph.nodes.spec import (
    BOOLEAN,
    CONDITIONING,
    FLOAT,
    GUIDER,
    INT,
    LATENT,
    NOISE,
    SAMPLER,
    SIGMAS,
    Input,
    Output,
    node,
)
from latentgraph.nodes.values import Conditioning, DiffusionModel, Latent

CATEGORY = "sampling/custom_sampling"


@dataclass(frozen=True)
class Sampler:
    """SAMPLER: a solver by ComfyUI's name (a diffusers scheduler class, nodes/schedulers.py)."""
    name: str


@dataclass(frozen=True)
class Sigmas:
    """SIGMAS: steps [first, last) of a `steps`-step grid of `scheduler`, for the model's noise schedule."""
    scheduler: str
    steps: int
    first: int
    last: int
    config: dict | None  # the noise schedule of the model the grid was made for (None: the sampler's model)
    # (sigma_min, sigma_max) set by hand (KarrasScheduler, ExponentialScheduler): the sampler's model must have them
    by_hand: tuple[float, float] | None = None

    @property
    def count(self) -> int:
        return self.last - self.first


@dataclass(frozen=True)
class Noise:
    """NOISE: the seed of the initial noise, or none added (DisableNoise)."""
    seed: int
    add: bool = True


@dataclass(frozen=True)
class Guider:
    """GUIDER: a model with its prompts and guidance scale (cfg 1 runs the positive prompt alone)."""
    model: DiffusionModel
    positive: Conditioning
    negative: Conditioning
    cfg: float


def sample(ctx, model: DiffusionModel, noise: Noise, cfg: float, positive: Conditioning, negative: Conditioning,
           sampler: Sampler, sigmas: Sigmas, latent_image: Latent):
    """(output, denoised_output): the latent after the steps, and the last step's estimate of the clean latent
    (the same where the steps reach the end of the grid)."""
    reason = check_pair(sampler.name, sigmas.scheduler)
    if reason:
        raise InputError("sigmas", reason)
    if sigmas.count <= 0:  # nothing to run: ComfyUI hands the latent on unchanged
        return latent_image, latent_image
    config = sigmas.config or model.scheduler_config
    if sigmas.by_hand:
        check_range(config, *sigmas.by_hand)
    sched = new_schedule(replace(model, scheduler_config=config), sampler.name, sigmas.scheduler, noise.seed,
                         sigmas.steps)
    start = cut_at_step(sched, sigmas.steps, sigmas.first) if sigmas.first > 0 else None
    first, last = entry_range(sched, start, cut_at_step(sched, sigmas.steps, sigmas.last))
    return run_entries(ctx, model, sched, noise.seed, cfg, positive, negative, latent_image, first, last,
                       add_noise=noise.add)


def check_range(config: dict, sigma_min: float, sigma_max: float) -> None:
    """diffusers' Karras and exponential grids span the model's own noise levels: hand-set ends must be those."""
    from diffusers import EulerDiscreteScheduler

    table = EulerDiscreteScheduler.from_config(config).sigmas
    own = float(table[table > 0].min()), float(table.max())
    if any(abs(mine - theirs) > 1e-3 * theirs for mine, theirs in zip((sigma_min, sigma_max), own)):
        raise InputError("sigmas", f"sigma_min {sigma_min:g} and sigma_max {sigma_max:g} must be this model's own "
                                   f"noise levels, {own[0]:.7g} and {own[1]:.7g}: diffusers' schedulers span them")


def ksampler_select(ctx, sampler_name: str):
    return (Sampler(sampler_name),)


def basic_scheduler(ctx, model: DiffusionModel, scheduler: str, steps: int, denoise: float):
    # denoise < 1 runs the last int(steps * denoise) steps of the same grid: KSampler's img2img
    # (diffusers' strength); ComfyUI instead stretches the grid to steps / denoise steps.
    first = steps - min(int(steps * denoise), steps)
    return (Sigmas(scheduler, steps, first, steps, dict(model.scheduler_config)),)


def karras_scheduler(ctx, steps: int, sigma_max: float, sigma_min: float, rho: float):
    return (Sigmas("karras", steps, 0, steps, None, (sigma_min, sigma_max)),)


def exponential_scheduler(ctx, steps: int, sigma_max: float, sigma_min: float):
    return (Sigmas("exponential", steps, 0, steps, None, (sigma_min, sigma_max)),)


def split_sigmas(ctx, sigmas: Sigmas, step: int):
    cut = min(sigmas.first + step, sigmas.last)
    return replace(sigmas, last=cut), replace(sigmas, first=cut)


def split_sigmas_denoise(ctx, sigmas: Sigmas, denoise: float):
    return split_sigmas(ctx, sigmas, sigmas.count - round(sigmas.count * denoise))


def sampler_custom(ctx, model: DiffusionModel, add_noise: bool, noise_seed: int, cfg: float, positive: Conditioning,
                   negative: Conditioning, sampler: Sampler, sigmas: Sigmas, latent_image: Latent):
    return sample(ctx, model, Noise(noise_seed, add_noise), cfg, positive, negative, sampler, sigmas, latent_image)


def sampler_custom_advanced(ctx, noise: Noise, guider: Guider, sampler: Sampler, sigmas: Sigmas,
                            latent_image: Latent):
    return sample(ctx, guider.model, noise, guider.cfg, guider.positive, guider.negative, sampler, sigmas,
                  latent_image)


def random_noise(ctx, noise_seed: int):
    return (Noise(noise_seed),)


def disable_noise(ctx):
    return (Noise(0, add=False),)


def cfg_guider(ctx, model: DiffusionModel, positive: Conditioning, negative: Conditioning, cfg: float):
    return (Guider(model, positive, negative, cfg),)


def basic_guider(ctx, model: DiffusionModel, conditioning: Conditioning):
    return (Guider(model, conditioning, conditioning, 1.0),)


SAMPLE_INPUTS = [Input("sampler", SAMPLER, tooltip="The solver (KSamplerSelect)."),
                 Input("sigmas", SIGMAS, tooltip="The steps to run (BasicScheduler, SplitSigmas)."),
                 Input("latent_image", LATENT, tooltip="An empty latent, an encoded image, or a noisy latent to go on "
                                                       "with.")]
SAMPLE_OUTPUTS = [Output("output", LATENT, tooltip="The latent after the steps (still noisy where they stop early)."),
                  Output("denoised_output", LATENT, tooltip="The last step's estimate of the clean latent.")]

node("KSamplerSelect", category=CATEGORY + "/samplers", description="Picks a solver for SamplerCustom.",
     inputs=sampler_inputs()[:1], outputs=[Output("SAMPLER", SAMPLER)])(ksampler_select)

node("BasicScheduler", category=CATEGORY + "/schedulers",
     description="The steps of a schedule, for SamplerCustom. denoise < 1 keeps the last steps of the same grid, "
                 "as KSampler's img2img does (diffusers' strength).",
     inputs=[MODEL_INPUT, sampler_inputs()[1],
             Input("steps", INT, default=20, min=1, max=10000, tooltip="Steps of the whole schedule."),
             Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
                   tooltip="Share of the steps to run, from the end of the schedule.")],
     outputs=[Output("SIGMAS", SIGMAS)])(basic_scheduler)

STEPS_INPUT = Input("steps", INT, default=20, min=1, max=10000)
SIGMA_INPUTS = [Input("sigma_max", FLOAT, default=14.614642, min=0.0, max=5000.0, step=0.01,
                      tooltip="The noisiest level: the model's own (SD1.5 and SDXL: 14.614642)."),
                Input("sigma_min", FLOAT, default=0.0291675, min=0.0, max=5000.0, step=0.01,
                      tooltip="The least noisy level: the model's own (SD1.5 and SDXL: 0.0291675).")]

node("KarrasScheduler", category=CATEGORY + "/schedulers",
     description="Karras' grid of noise levels (diffusers' use_karras_sigmas, rho 7) between the model's own "
                 "sigma_min and sigma_max; other ends or rho are refused.",
     inputs=[STEPS_INPUT, *SIGMA_INPUTS,
             Input("rho", FLOAT, default=7.0, min=7.0, max=7.0, step=0.01,
                   tooltip="diffusers' Karras grid has rho 7.")],
     outputs=[Output("SIGMAS", SIGMAS)])(karras_scheduler)

node("ExponentialScheduler", category=CATEGORY + "/schedulers",
     description="Noise levels evenly spaced in log sigma (diffusers' use_exponential_sigmas) between the model's "
                 "own sigma_min and sigma_max; other ends are refused.",
     inputs=[STEPS_INPUT, *SIGMA_INPUTS], outputs=[Output("SIGMAS", SIGMAS)])(exponential_scheduler)

node("SplitSigmas", category=CATEGORY + "/sigmas",
     description="Splits a schedule at a step: the first steps (high noise) and the rest (low noise), e.g. for a "
                 "base and a refiner.",
     inputs=[Input("sigmas", SIGMAS), Input("step", INT, default=0, min=0, max=10000,
                                            tooltip="Steps that go to high_sigmas.")],
     outputs=[Output("high_sigmas", SIGMAS), Output("low_sigmas", SIGMAS)])(split_sigmas)

node("SplitSigmasDenoise", category=CATEGORY + "/sigmas",
     description="Splits a schedule so that low_sigmas holds the last `denoise` share of its steps.",
     inputs=[Input("sigmas", SIGMAS), Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01)],
     outputs=[Output("high_sigmas", SIGMAS), Output("low_sigmas", SIGMAS)])(split_sigmas_denoise)

node("SamplerCustom", category=CATEGORY,
     description="Runs a sampler over the given steps. add_noise off continues a latent that still holds its "
                 "noise (the second half of a split schedule).",
     inputs=[MODEL_INPUT,
             Input("add_noise", BOOLEAN, default=True,
                   tooltip="Noise the latent to the first step's level (off: it already holds that noise)."),
             seed_input("noise_seed"),
             CFG_INPUT,
             Input("positive", CONDITIONING, tooltip="What the image should show."),
             Input("negative", CONDITIONING, tooltip="What it should not show."),
             *SAMPLE_INPUTS],
     outputs=SAMPLE_OUTPUTS)(sampler_custom)

node("SamplerCustomAdvanced", category=CATEGORY,
     description="SamplerCustom with the noise (RandomNoise, DisableNoise) and the guidance (CFGGuider, "
                 "BasicGuider) as nodes of their own.",
     inputs=[Input("noise", NOISE, tooltip="RandomNoise, or DisableNoise to continue a noisy latent."),
             Input("guider", GUIDER, tooltip="The model and its prompts (CFGGuider, BasicGuider)."),
             *SAMPLE_INPUTS],
     outputs=SAMPLE_OUTPUTS)(sampler_custom_advanced)

node("RandomNoise", category=CATEGORY + "/noise", description="The initial noise, drawn from a seed.",
     inputs=[seed_input("noise_seed")],
     outputs=[Output("NOISE", NOISE)])(random_noise)

node("DisableNoise", category=CATEGORY + "/noise",
     description="No initial noise: the sampler goes on with the latent as it is.",
     inputs=[], outputs=[Output("NOISE", NOISE)])(disable_noise)

node("CFGGuider", category=CATEGORY + "/guiders", description="A model guided by a prompt and a negative prompt.",
     inputs=[MODEL_INPUT, Input("positive", CONDITIONING), Input("negative", CONDITIONING), CFG_INPUT],
     outputs=[Output("GUIDER", GUIDER)])(cfg_guider)

node("BasicGuider", category=CATEGORY + "/guiders", description="A model and one prompt, without guidance (cfg 1).",
     inputs=[MODEL_INPUT, Input("conditioning", CONDITIONING)],
     outputs=[Output("GUIDER", GUIDER)])(basic_guider)
