"""ComfyUI's sampler and scheduler names on diffusers' schedulers.

`sampler_name` picks the diffusers scheduler class (the solver), `scheduler` the grid of noise
levels (flags on that class). A pair that diffusers cannot express faithfully is refused with a
reason. See docs/samplers.md for the table and the known differences from ComfyUI's pixels.
"""
from __future__ import annotations

import inspect

from latentgraph.graph.errors import InputError
from latentgraph.lazy import diffusers
from latentgraph.nodes.quiet import hide_torchsde_rounding

# sampler_name -> (diffusers class name, fixed settings)
SAMPLERS: dict[str, tuple[str, dict]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm_2": ("KDPM2DiscreteScheduler", {}),
    "dpm_2_ancestral": ("KDPM2AncestralDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpmpp_2m_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "dpmpp_sde": ("DPMSolverSDEScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    # bh1's corrector divides by h, infinite on a last step to sigma 0: diffusers returns NaN there.
    "uni_pc": ("UniPCMultistepScheduler", {"solver_type": "bh1", "final_sigmas_type": "sigma_min"}),
    "uni_pc_bh2": ("UniPCMultistepScheduler", {"solver_type": "bh2"}),
    "lcm": ("LCMScheduler", {}),
    # diffusers' own, not in ComfyUI
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddpm": ("DDPMScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
}

# scheduler -> settings on the chosen class; "default" keeps the checkpoint's own grid.
SCHEDULES: dict[str, dict] = {
    "normal": {"timestep_spacing": "linspace"},
    "karras": {"use_karras_sigmas": True, "timestep_spacing": "linspace"},
    "exponential": {"use_exponential_sigmas": True, "timestep_spacing": "linspace"},
    "simple": {"timestep_spacing": "trailing"},
    "sgm_uniform": {"timestep_spacing": "trailing"},
    "ddim_uniform": {"timestep_spacing": "leading", "steps_offset": 1},
    "default": {},
}

# Names ComfyUI users may type that diffusers cannot reproduce, with the reason.
REFUSED_SAMPLERS = {
    "dpmpp_2s_ancestral": "diffusers has no DPM++ 2S ancestral scheduler",
    "dpmpp_3m_sde": "diffusers' DPMSolverMultistepScheduler has no third-order SDE variant",
    "euler_cfg_pp": "CFG++ needs the unconditional prediction inside the solver; diffusers has no such scheduler",
}
REFUSED_SCHEDULES = {
    "beta": "diffusers' use_beta_sigmas interpolates sigmas, while ComfyUI's beta schedule takes timesteps at "
            "Beta(0.6, 0.6) quantiles: the grids differ by up to 380%",
}

# The schedule flags each class lacks, so that validation needs no diffusers import (a test checks this
# table against diffusers' signatures).
MISSING_FLAGS: dict[str, tuple[str, ...]] = {
    cls: ("use_karras_sigmas", "use_exponential_sigmas")
    for cls in ("EulerAncestralDiscreteScheduler", "DDIMScheduler", "LCMScheduler", "PNDMScheduler", "DDPMScheduler")
}

SAMPLER_NAMES = list(SAMPLERS)
SEEDED_SAMPLERS = {"dpmpp_sde"}  # their scheduler depends on the seed (make_scheduler)
SCHEDULER_NAMES = list(SCHEDULES)


def check_pair(sampler_name: str, scheduler: str) -> str | None:
    """Why this pair cannot run, or None."""
    cls_name, fixed = SAMPLERS[sampler_name]
    for flag in SCHEDULES[scheduler]:
        if flag in MISSING_FLAGS.get(cls_name, ()):
            return (f"sampler {sampler_name!r} ({cls_name}) cannot use the {scheduler!r} schedule: "
                    f"diffusers' {cls_name} has no {flag!r} setting")
    return None


def make_scheduler(base_config: dict, sampler_name: str, scheduler: str, seed: int | None = None):
    """A fresh scheduler (they keep step state) built from the checkpoint's own noise schedule
    settings plus the sampler's and the grid's settings."""
    cls_name, fixed = SAMPLERS[sampler_name]
    cls = getattr(diffusers, cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    # Explicit settings rather than from_config's defaults-tracking: a shared config patched by a
    # pipeline (e.g. DDIM's clip_sample) must not leak in, and unknown keys are dropped here.
    if base_config.get("rescale_betas_zero_snr") and "rescale_betas_zero_snr" not in accepted:
        zsnr = [n for n, (c, _) in SAMPLERS.items()
                if "rescale_betas_zero_snr" in inspect.signature(getattr(diffusers, c).__init__).parameters]
        raise InputError("sampler_name", f"{sampler_name!r} ({cls_name}) has no zero terminal SNR schedule in "
                                         f"diffusers, which this model uses: pick one of {', '.join(zsnr)}")
    settings = {k: v for k, v in base_config.items() if k in accepted and not k.startswith("_")}
    # Stable Diffusion pipelines force these on any scheduler they are given (latents are not in
    # [-1, 1], and SD counts steps from 1): do the same so that our steps are theirs.
    settings.update({k: v for k, v in (("clip_sample", False), ("steps_offset", 1)) if k in accepted})
    settings.update(fixed)
    settings.update(SCHEDULES[scheduler])
    if sampler_name in SEEDED_SAMPLERS:
        # Without a seed its Brownian tree draws from the global RNG: tie it to the node's seed.
        settings["noise_sampler_seed"] = seed
        hide_torchsde_rounding()
    return cls(**settings)
