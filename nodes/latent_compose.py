"""Latents combined: one pasted into another (LatentComposite), two mixed (LatentBlend)."""
from __future__ import annotations

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes.image import center_crop, paste
from latentgraph.nodes.masks import MAX_SIDE, fade_both_ends
from latentgraph.nodes.spec import COMBO, FLOAT, INT, LATENT, Input, Output, node
from latentgraph.nodes.values import Latent


def concrete(latent: Latent, like: Latent, input_name: str) -> torch.Tensor:
    """The latent's tensor; an EmptyLatentImage canvas (no tensor until a model samples it) becomes
    zeros, as ComfyUI's empty latent is, with the channels and scale of the other, concrete latent."""
    if latent.samples is not None:
        return latent.samples
    if like.samples is None:
        raise InputError(input_name, "both latents are empty canvases: sample or encode one of them first, so "
                                     "that its channels and scale are known")
    scale = like.pixels_per_cell
    return like.samples.new_zeros(latent.batch_size, like.samples.shape[1], round(latent.height / scale),
                                  round(latent.width / scale))


def fit_to(second: torch.Tensor, first: torch.Tensor, mode: str, batch: bool = True) -> torch.Tensor:
    """`second` centre-cropped and resized to `first`'s cells (and, with `batch`, spread over its batch)."""
    if second.shape[-2:] != first.shape[-2:]:
        second = F.interpolate(center_crop(second, first.shape[-1] / first.shape[-2]), size=first.shape[-2:],
                               mode=mode, align_corners=False)
    second = second.to(first)
    return matching_batch(second, first.shape[0], "samples2") if batch else second


def fitted_pair(samples1: Latent, samples2: Latent, mode: str, batch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Both tensors (an empty canvas as zeros), the second fitted to the first (fit_to)."""
    first, second = concrete(samples1, samples2, "samples1"), concrete(samples2, samples1, "samples2")
    if second.shape[1] != first.shape[1]:
        raise InputError("samples2", f"{second.shape[1]} latent channels where samples1 has {first.shape[1]}")
    return first, fit_to(second, first, mode, batch)


def matching_batch(source: torch.Tensor, batch: int, input_name: str) -> torch.Tensor:
    if source.shape[0] == batch:
        return source
    if batch % source.shape[0]:
        raise InputError(input_name, f"a batch of {source.shape[0]} cannot be spread over a batch of {batch}")
    return source.repeat(batch // source.shape[0], 1, 1, 1)


@node("LatentComposite", category="latent",
      description="Pastes `samples_from` into `samples_to` with its top-left corner at (x, y) pixels (rounded down "
                  "to whole latent cells); `feather` fades its inner edges over that many pixels.",
      inputs=[Input("samples_to", LATENT), Input("samples_from", LATENT),
              Input("x", INT, default=0, min=0, max=MAX_SIDE, step=8),
              Input("y", INT, default=0, min=0, max=MAX_SIDE, step=8),
              Input("feather", INT, default=0, min=0, max=MAX_SIDE, step=8)],
      outputs=[Output("LATENT", LATENT)])
def latent_composite(ctx, samples_to: Latent, samples_from: Latent, x: int, y: int, feather: int):
    to = concrete(samples_to, samples_from, "samples_to")
    source = matching_batch(concrete(samples_from, samples_to, "samples_from"), to.shape[0], "samples_from")
    if source.shape[1] != to.shape[1]:
        raise InputError("samples_from", f"{source.shape[1]} latent channels where samples_to has {to.shape[1]}")
    scale = round(samples_to.width / to.shape[-1])  # pixels per latent cell
    x, y, over = x // scale, y // scale, feather // scale
    h, w = source.shape[-2:]
    # Fade in from each side of the pasted part that lies inside the destination (not along its border).
    rows = fade_both_ends(h, over if y > 0 else 0, over if y + h < to.shape[-2] else 0)
    cols = fade_both_ends(w, over if x > 0 else 0, over if x + w < to.shape[-1] else 0)
    weight = (rows[:, None] * cols[None, :]).to(to)

    def mix(region, part):  # `part`: the source cut at the destination's edges
        cut = weight[:part.shape[-2], :part.shape[-1]]
        return part * cut + region * (1 - cut)
    out = paste(to, source.to(to), x, y, mix)
    return (samples_to.replace(samples=out, dist=None, batch_size=out.shape[0]),)


@node("LatentBlend", category="latent",
      description="blend_factor x samples1 + (1 - blend_factor) x samples2; samples2 is centre-cropped and "
                  "resized to samples1's size if they differ.",
      inputs=[Input("samples1", LATENT), Input("samples2", LATENT),
              Input("blend_factor", FLOAT, default=0.5, min=0.0, max=1.0, step=0.01),
              Input("blend_mode", COMBO, default="normal", choices=["normal"])],
      outputs=[Output("LATENT", LATENT)])
def latent_blend(ctx, samples1: Latent, samples2: Latent, blend_factor: float, blend_mode: str):
    first, second = fitted_pair(samples1, samples2, "bicubic")
    out = first * blend_factor + second * (1 - blend_factor)
    return (samples1.replace(samples=out, dist=None, batch_size=out.shape[0]),)
