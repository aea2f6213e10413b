"""The values that flow along links: one class per socket type (IMAGE is a plain tensor,
float in [0, 1], shaped batch x channels x height x width).

Tensors inside these values stay on the compute device; the executor's cache measures them with
`nbytes` to keep within its memory budget.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from latentgraph.lazy import torch


def module_device(module) -> torch.device:
    """Where a module's weights are. (diffusers' `.device` and `.dtype` walk every submodule: 2 ms a
    call on an SD1.5 UNet, several times a run.)"""
    return next(module.parameters()).device


def module_dtype(module) -> torch.dtype:
    """The dtype of a module's first floating-point weight, as diffusers' `.dtype`."""
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


@dataclass(eq=False)
class DiffusionModel:
    """MODEL: the denoising network and the noise schedule it was trained with."""
    unet: Any
    scheduler_config: dict  # the checkpoint's own scheduler settings (betas, prediction type, ...)
    family: str  # "sd15", "sdxl" or "sdxl_refiner"
    name: str
    vae_scale_factor: int = 8  # of the checkpoint's VAE: pixels per latent cell
    previewer: Any = None  # a cheap latent -> RGB map for live previews
    adapters: tuple = ()  # LoRA (adapter name, strength) pairs switched on while this model samples
    freeu: dict | None = None  # FreeU's s1, s2, b1, b2, switched on while this model samples
    guidance_rescale: float = 0.0  # RescaleCFG's multiplier (diffusers' guidance_rescale)
    step_cache: Any = None  # DeepCache / ApplyFBCacheOnModel's settings, switched on while this model samples
    compile: bool = False  # run the UNet through torch.compile (--compile)

    @property
    def device(self) -> torch.device:
        return module_device(self.unet)

    def guide(self, uncond: torch.Tensor, cond: torch.Tensor, cfg: float) -> torch.Tensor:
        """Classifier-free guidance, then RescaleCFG's rescale where set, as diffusers' pipelines do it."""
        guided = uncond + cfg * (cond - uncond)
        if self.guidance_rescale > 0:  # diffusers' own function (imported late: values stays light)
            from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
            guided = rescale_noise_cfg(guided, cond, self.guidance_rescale)
        return guided

    @property
    def dtype(self) -> torch.dtype:
        return module_dtype(self.unet)

    @property
    def denoiser(self):
        """The UNet to call: compiled under --compile, except while a step cache swaps parts of it."""
        if self.compile and self.step_cache is None:
            from latentgraph.nodes.compiled import compiled
            return compiled(self.unet)
        return self.unet


@dataclass(eq=False)
class TextEncoder:
    """CLIP: tokenizers and text encoders (one for SD1.5 and the SDXL refiner, two for SDXL)."""
    tokenizers: list
    encoders: list
    family: str
    name: str
    force_zeros_for_empty_prompt: bool = False
    clip_skip: int = 0  # layers skipped from the end, as diffusers' `clip_skip` (CLIPSetLastLayer)
    adapters: tuple = ()  # LoRA (adapter name, strength) pairs switched on while this encodes


@dataclass(eq=False)
class VAEModel:
    """VAE: the autoencoder between pixels and latents."""
    vae: Any
    name: str
    compile: bool = False  # decode through torch.compile (--compile)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """diffusers' `vae.decode(...)` sample, compiled under --compile."""
        if self.compile:
            from latentgraph.nodes.compiled import compiled
            return compiled(self.vae, "decode")(latents, return_dict=False)[0]
        return self.vae.decode(latents, return_dict=False)[0]

    @property
    def scale_factor(self) -> int:
        """Pixels per latent cell along each side (8 for SD's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels


@dataclass(eq=False)
class ControlNet:
    """CONTROL_NET: a ControlNet (diffusers' ControlNetModel) that steers a UNet of its family."""
    net: Any
    name: str


@dataclass(frozen=True, eq=False)
class ControlHint:
    """A ControlNet attached to a conditioning with its control image (batch x 3 x H x W, in [0, 1]),
    its strength and the part of the sampler's steps it acts on (diffusers' control_guidance_start
    and control_guidance_end: fractions of the steps run)."""
    control_net: ControlNet
    image: torch.Tensor
    strength: float
    start: float = 0.0
    end: float = 1.0

    def acts_at(self, step: int, total: int) -> bool:
        """As diffusers' `controlnet_keep`: off for step i where i/total < start or (i+1)/total > end."""
        return not (step / total < self.start or (step + 1) / total > self.end)


@dataclass(frozen=True, eq=False)
class Conditioning:
    """CONDITIONING: what a text encoder made of one prompt.

    `embeds` is the cross-attention sequence. SDXL adds `pooled` (text_embeds) and the size
    conditioning `time_ids`; `time_ids=None` means "derive from the latent's size" (what diffusers
    does when no size is given)."""
    embeds: torch.Tensor
    pooled: torch.Tensor | None = None
    time_ids: tuple[float, ...] | None = None
    # For the SDXL refiner: the aesthetic score put into time ids derived from the latent size.
    aesthetic_score: float | None = None
    empty_prompt: bool = False
    # ConditioningCombine: further prompts; the sampler averages their predictions with this one's.
    also: tuple[Conditioning, ...] = ()
    # ConditioningSetTimestepRange: (start, end) of sampling where this prompt acts, 0 = the noisiest.
    timestep_range: tuple[float, float] | None = None
    # ControlNetApply(Advanced): ControlNets steering the UNet where this prompt is used, in the order applied.
    control: tuple[ControlHint, ...] = ()
    # ConditioningSetArea(Percentage) / SetMask: where in the picture this prompt acts, and its weight
    # there against the other prompts combined with it. area: (x, y, width, height), in pixels or
    # (area_fraction) as fractions of the picture; mask: (1, height, width) in [0, 1], any size.
    area: tuple[float, float, float, float] | None = None
    area_fraction: bool = False
    mask: torch.Tensor | None = None
    mask_bounds: bool = False  # run the model on the mask's bounding box only
    strength: float = 1.0

    @property
    def weighted(self) -> bool:
        """Whether this prompt has an area, a mask or a strength for the sampler to weigh."""
        return self.area is not None or self.mask is not None or self.strength != 1.0

    def entries(self) -> list[Conditioning]:
        """This prompt and the ones combined with it, one by one."""
        return [dataclasses.replace(self, also=())] + [e for other in self.also for e in other.entries()]

    def active_at(self, t: float) -> bool:
        """Whether this prompt acts at UNet timestep t (999 = the noisiest)."""
        if self.timestep_range is None:
            return True
        start, end = self.timestep_range
        return (1 - end) * 999 <= float(t) <= (1 - start) * 999


@dataclass(frozen=True, eq=False)
class Latent:
    """LATENT: latents as the UNet sees them (already multiplied by the VAE's scaling factor).

    `samples=None` is a blank canvas from EmptyLatentImage: its shape comes from the model that
    samples it (latent channels, VAE scale factor), and a full denoise of it starts from pure
    noise, as a txt2img pipeline does. A latent made by VAEEncode also keeps the encoder's
    distribution (`dist`: mean and log-variance, as diffusers' DiagonalGaussianDistribution takes
    them), so that a sampler can draw the initial latent from it with its seeded generator before
    it draws the noise, exactly as diffusers' img2img pipelines do."""
    samples: torch.Tensor | None
    width: int  # pixels
    height: int
    batch_size: int
    dist: torch.Tensor | None = None
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    # SetLatentNoiseMask: only where this pixel mask is 1 is the latent repainted (inpainting)
    noise_mask: torch.Tensor | None = None

    def replace(self, **changes) -> Latent:
        return dataclasses.replace(self, **changes)

    @property
    def pixels_per_cell(self) -> float:
        """Pixels per latent cell along a side (the VAE's scale factor); for a latent with a tensor."""
        return self.width / self.samples.shape[-1]


def nbytes(value: Any) -> int:
    """Bytes of tensor data held by a value (models excluded: the model cache counts those)."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, (DiffusionModel, TextEncoder, VAEModel, ControlNet)):
        return 0
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    return 0


def model_modules(values) -> dict[int, Any]:
    """The torch modules of the models among `values`, by id."""
    modules = {}
    for value in values:
        if isinstance(value, DiffusionModel):
            modules[id(value.unet)] = value.unet
        elif isinstance(value, TextEncoder):
            modules.update((id(m), m) for m in value.encoders)
        elif isinstance(value, VAEModel):
            modules[id(value.vae)] = value.vae
        elif isinstance(value, ControlNet):
            modules[id(value.net)] = value.net
    return modules


def model_bytes(values) -> int:
    """Bytes of the weights of the models among `values` (each counted once)."""
    return sum(t.element_size() * t.nelement() for m in model_modules(values).values()
               for t in list(m.parameters()) + list(m.buffers()))
