"""Conditioning arithmetic, as ComfyUI's nodes of the same names: blend, join, zero, combine, and
limit to part of the sampling. A node that changes a conditioning changes each of its combined
prompts (`Conditioning.also`) alike."""
from __future__ import annotations

import dataclasses

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes.spec import COMBO, CONDITIONING, FLOAT, INT, MASK, Input, Output, node, start_before_end
from latentgraph.nodes.values import Conditioning


def _each(c: Conditioning, change) -> Conditioning:
    """`change` applied to this prompt and to each prompt combined with it."""
    return dataclasses.replace(change(c), also=tuple(_each(a, change) for a in c.also))


def _same_width(to: Conditioning, other: Conditioning, name: str) -> None:
    if to.embeds.shape[-1] != other.embeds.shape[-1]:
        raise InputError(name, f"this conditioning is {other.embeds.shape[-1]} wide and conditioning_to "
                               f"{to.embeds.shape[-1]}: both must come from the same checkpoint's CLIP")


@node("ConditioningAverage", category="conditioning",
      description="Blends two prompts: conditioning_to_strength x conditioning_to + (1 - strength) x "
                  "conditioning_from, for the text embeddings and SDXL's pooled output. conditioning_from is "
                  "cut to conditioning_to's length or padded with zeros; size conditioning comes from "
                  "conditioning_to.",
      inputs=[Input("conditioning_to", CONDITIONING), Input("conditioning_from", CONDITIONING),
              Input("conditioning_to_strength", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_average(ctx, conditioning_to: Conditioning, conditioning_from: Conditioning,
                         conditioning_to_strength: float):
    return (_each(conditioning_to, lambda to: _average(to, conditioning_from, conditioning_to_strength)),)


def _average(to: Conditioning, other: Conditioning, s: float) -> Conditioning:
    _same_width(to, other, "conditioning_from")
    length = to.embeds.shape[1]
    mixed = other.embeds[:, :length].to(to.embeds)
    mixed = F.pad(mixed, (0, 0, 0, length - mixed.shape[1]))
    pooled = to.pooled
    if to.pooled is not None and other.pooled is not None:
        pooled = to.pooled * s + other.pooled.to(to.pooled) * (1 - s)
    return dataclasses.replace(to, embeds=to.embeds * s + mixed * (1 - s), pooled=pooled,
                               empty_prompt=to.empty_prompt and s == 1.0)


@node("ConditioningConcat", category="conditioning",
      description="Appends conditioning_from's text embeddings to conditioning_to's along the sequence (as "
                  "one longer prompt, each part encoded alone); everything else comes from conditioning_to.",
      inputs=[Input("conditioning_to", CONDITIONING), Input("conditioning_from", CONDITIONING)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_concat(ctx, conditioning_to: Conditioning, conditioning_from: Conditioning):
    _same_width(conditioning_to, conditioning_from, "conditioning_from")
    extra = conditioning_from.embeds.to(conditioning_to.embeds)
    return (_each(conditioning_to, lambda to: dataclasses.replace(
        to, embeds=torch.cat([to.embeds, extra], dim=1), empty_prompt=False)),)


@node("ConditioningZeroOut", category="advanced/conditioning",
      description="The same conditioning with its text embeddings and pooled output set to zeros (what SDXL "
                  "base checkpoints use as the negative of an empty prompt).",
      inputs=[Input("conditioning", CONDITIONING)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_zero_out(ctx, conditioning: Conditioning):
    return (_each(conditioning, _zeros),)


def _zeros(c: Conditioning) -> Conditioning:
    pooled = None if c.pooled is None else torch.zeros_like(c.pooled)
    return dataclasses.replace(c, embeds=torch.zeros_like(c.embeds), pooled=pooled, empty_prompt=False)


@node("ConditioningCombine", category="conditioning",
      description="Uses both prompts: at each step the sampler predicts with each and averages the predictions "
                  "(unlike ConditioningAverage, which blends the text embeddings into one prompt).",
      inputs=[Input("conditioning_1", CONDITIONING), Input("conditioning_2", CONDITIONING)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_combine(ctx, conditioning_1: Conditioning, conditioning_2: Conditioning):
    _same_width(conditioning_1, conditioning_2, "conditioning_2")
    return (dataclasses.replace(conditioning_1, also=conditioning_1.also + (conditioning_2,)),)


@node("ConditioningSetTimestepRange", category="advanced/conditioning",
      description="Lets the prompt act only from `start` to `end` of the sampling (0 = the noisiest end, 1 = the "
                  "cleanest, over the model's 1000 noise levels). Combine prompts with ranges that together "
                  "cover 0 to 1, e.g. one for the layout (0 to 0.4) and one for the details (0.4 to 1).",
      inputs=[Input("conditioning", CONDITIONING),
              Input("start", FLOAT, default=0.0, min=0.0, max=1.0, step=0.001),
              Input("end", FLOAT, default=1.0, min=0.0, max=1.0, step=0.001)],
      outputs=[Output("CONDITIONING", CONDITIONING)], check=start_before_end())
def conditioning_set_timestep_range(ctx, conditioning: Conditioning, start: float, end: float):
    return (_each(conditioning, lambda c: dataclasses.replace(c, timestep_range=(start, end))),)


AREA_STRENGTH = Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01,
                      tooltip="Weight of this prompt's prediction against the others' where they overlap.")


def _pixels(name: str, default: int) -> Input:
    return Input(name, INT, default=default, min=0 if name in ("x", "y") else 64, max=16384, step=8)


@node("ConditioningSetArea", category="conditioning",
      description="Lets the prompt act only in a rectangle of the picture (in pixels); combine it with prompts for "
                  "the rest. Where prompts overlap, their predictions are averaged by strength; the rectangle's "
                  "inner edges fade over 8 latent cells.",
      inputs=[Input("conditioning", CONDITIONING), _pixels("width", 64), _pixels("height", 64), _pixels("x", 0),
              _pixels("y", 0), AREA_STRENGTH],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_set_area(ctx, conditioning: Conditioning, width: int, height: int, x: int, y: int,
                          strength: float):
    return (_each(conditioning, lambda c: dataclasses.replace(
        c, area=(x, y, width, height), area_fraction=False, strength=strength)),)


def _fraction(name: str, default: float) -> Input:
    return Input(name, FLOAT, default=default, min=0.0, max=1.0, step=0.01)


@node("ConditioningSetAreaPercentage", category="conditioning",
      description="ConditioningSetArea with the rectangle given as fractions of the picture's width and height.",
      inputs=[Input("conditioning", CONDITIONING), _fraction("width", 1.0), _fraction("height", 1.0),
              _fraction("x", 0.0), _fraction("y", 0.0), AREA_STRENGTH],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_set_area_percentage(ctx, conditioning: Conditioning, width: float, height: float, x: float,
                                     y: float, strength: float):
    return (_each(conditioning, lambda c: dataclasses.replace(
        c, area=(x, y, width, height), area_fraction=True, strength=strength)),)


@node("ConditioningSetAreaStrength", category="conditioning",
      description="Sets the weight of the prompt's prediction against the others combined with it.",
      inputs=[Input("conditioning", CONDITIONING), AREA_STRENGTH],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_set_area_strength(ctx, conditioning: Conditioning, strength: float):
    return (_each(conditioning, lambda c: dataclasses.replace(c, strength=strength)),)


@node("ConditioningSetMask", category="conditioning",
      description="Lets the prompt act where the mask is (weighted by its values and the strength); combine it "
                  "with prompts for the rest. 'mask bounds' runs the model on the mask's bounding box only.",
      inputs=[Input("conditioning", CONDITIONING), Input("mask", MASK), AREA_STRENGTH,
              Input("set_cond_area", COMBO, default="default", choices=["default", "mask bounds"])],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_set_mask(ctx, conditioning: Conditioning, mask: torch.Tensor, strength: float, set_cond_area: str):
    mask = mask[:1] if mask.ndim == 3 else mask[None]
    return (_each(conditioning, lambda c: dataclasses.replace(
        c, mask=mask, mask_bounds=set_cond_area == "mask bounds", strength=strength)),)
