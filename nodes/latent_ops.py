"""Latent arithmetic, batching and transforms (ComfyUI's latent/advanced, latent/batch and latent/transform
nodes). Two latents of different sizes: the second is centre-cropped and resized (bilinear) to the
first's, and its batch spread over the first's, as ComfyUI does. An EmptyLatentImage canvas counts as
zeros (see latent_compose.concrete); alone it stays a canvas, only its size changes."""
from __future__ import annotations

from latentgraph.graph.errors import InputError
from latentgraph.lazy import torch
from latentgraph.nodes.canvas import FLIPS, ROTATIONS, crop_inputs, image_crop
from latentgraph.nodes.latent_compose import fitted_pair
from latentgraph.nodes.spec import COMBO, FLOAT, LATENT, Input, Output, node
from latentgraph.nodes.values import Latent

PAIR = [Input("samples1", LATENT), Input("samples2", LATENT)]


def result(latent: Latent, samples: torch.Tensor, **changes) -> tuple[Latent]:
    return (latent.replace(samples=samples, dist=None, batch_size=samples.shape[0], **changes),)


@node("LatentAdd", category="latent/advanced", description="samples1 + samples2.", inputs=PAIR,
      outputs=[Output("LATENT", LATENT)])
def latent_add(ctx, samples1: Latent, samples2: Latent):
    first, second = fitted_pair(samples1, samples2, "bilinear")
    return result(samples1, first + second)


@node("LatentSubtract", category="latent/advanced", description="samples1 - samples2.", inputs=PAIR,
      outputs=[Output("LATENT", LATENT)])
def latent_subtract(ctx, samples1: Latent, samples2: Latent):
    first, second = fitted_pair(samples1, samples2, "bilinear")
    return result(samples1, first - second)


@node("LatentMultiply", category="latent/advanced", description="The latent times a number.",
      inputs=[Input("samples", LATENT), Input("multiplier", FLOAT, default=1.0, min=-10.0, max=10.0, step=0.01)],
      outputs=[Output("LATENT", LATENT)])
def latent_multiply(ctx, samples: Latent, multiplier: float):
    if samples.samples is None:  # an empty canvas is zeros: still zeros
        return (samples,)
    return result(samples, samples.samples * multiplier)


def _unit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cell's channel vector split into its length and its direction (0 where the length is 0)."""
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return norm, torch.nan_to_num(x / norm)


@node("LatentInterpolate", category="latent/advanced",
      description="Mixes two latents cell by cell: the directions of their channel vectors by `ratio` (renormalised), "
                  "and their lengths by the same ratio, as ComfyUI does.",
      inputs=[*PAIR, Input("ratio", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
                           tooltip="1: samples1, 0: samples2.")],
      outputs=[Output("LATENT", LATENT)])
def latent_interpolate(ctx, samples1: Latent, samples2: Latent, ratio: float):
    first, second = fitted_pair(samples1, samples2, "bilinear")
    (n1, d1), (n2, d2) = _unit(first), _unit(second)
    _, direction = _unit(d1 * ratio + d2 * (1 - ratio))
    return result(samples1, direction * (n1 * ratio + n2 * (1 - ratio)))


@node("LatentBatch", category="latent/batch",
      description="One batch of both latents, samples1's first (samples2 fitted to samples1's size).",
      inputs=PAIR, outputs=[Output("LATENT", LATENT)])
def latent_batch(ctx, samples1: Latent, samples2: Latent):
    if samples1.noise_mask is not None or samples2.noise_mask is not None:
        raise InputError("samples2", "latents with an inpainting mask (SetLatentNoiseMask) cannot be batched: set "
                                     "the mask after LatentBatch")
    first, second = fitted_pair(samples1, samples2, "bilinear", batch=False)
    return result(samples1, torch.cat([first, second]))


@node("LatentFlip", category="latent/transform", description="Mirrors the latent upside down or left to right.",
      inputs=[Input("samples", LATENT), Input("flip_method", COMBO, default="x-axis: vertically", choices=list(FLIPS))],
      outputs=[Output("LATENT", LATENT)])
def latent_flip(ctx, samples: Latent, flip_method: str):
    if samples.samples is None:
        return (samples,)
    mask = None if samples.noise_mask is None else samples.noise_mask.flip(FLIPS[flip_method])  # the mask follows
    return result(samples, samples.samples.flip(FLIPS[flip_method]), noise_mask=mask)


@node("LatentRotate", category="latent/transform", description="Turns the latent clockwise by quarter turns.",
      inputs=[Input("samples", LATENT), Input("rotation", COMBO, default="none", choices=list(ROTATIONS))],
      outputs=[Output("LATENT", LATENT)])
def latent_rotate(ctx, samples: Latent, rotation: str):
    turns = ROTATIONS[rotation]
    size = (samples.height, samples.width) if turns % 2 else (samples.width, samples.height)
    if samples.samples is None:
        return (samples.replace(width=size[0], height=size[1]),)
    def turn(x):  # from width towards height: clockwise, as ImageRotate
        return None if x is None else torch.rot90(x, turns, dims=(-1, -2)).clone()
    return result(samples, turn(samples.samples), width=size[0], height=size[1], noise_mask=turn(samples.noise_mask))


@node("LatentCrop", category="latent/transform",
      description="A part of the latent: its top-left corner at (x, y) and its size, in pixels (rounded down to "
                  "whole latent cells; at least one cell is kept).",
      inputs=[Input("samples", LATENT), *crop_inputs(8)],
      outputs=[Output("LATENT", LATENT)])
def latent_crop(ctx, samples: Latent, width: int, height: int, x: int, y: int):
    if samples.samples is None:  # a canvas: only its size changes (in the model's cells once sampled)
        x, y = min(x, samples.width - 8), min(y, samples.height - 8)
        return (samples.replace(width=max(8, min(width, samples.width - x) // 8 * 8),
                                height=max(8, min(height, samples.height - y) // 8 * 8)),)
    scale = samples.pixels_per_cell
    x, y = min(int(x // scale), samples.samples.shape[-1] - 1), min(int(y // scale), samples.samples.shape[-2] - 1)
    (part,) = image_crop(None, samples.samples, max(1, int(width // scale)), max(1, int(height // scale)), x, y)
    mask = samples.noise_mask
    if mask is not None:  # the pixel mask follows the crop
        mask = mask[..., round(y * scale):round((y + part.shape[-2]) * scale),
                    round(x * scale):round((x + part.shape[-1]) * scale)]
    return result(samples, part, width=round(part.shape[-1] * scale), height=round(part.shape[-2] * scale),
                  noise_mask=mask)
