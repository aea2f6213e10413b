"""Conditioning arithmetic, as ComfyUI's nodes of the same names: blend, join, zero."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from latentgraph.graph.errors import InputError
from latentgraph.nodes.spec import CONDITIONING, FLOAT, Input, Output, node
from latentgraph.nodes.values import Conditioning


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
    to, other, s = conditioning_to, conditioning_from, conditioning_to_strength
    _same_width(to, other, "conditioning_from")
    length = to.embeds.shape[1]
    mixed = other.embeds[:, :length].to(to.embeds)
    mixed = F.pad(mixed, (0, 0, 0, length - mixed.shape[1]))
    pooled = to.pooled
    if to.pooled is not None and other.pooled is not None:
        pooled = to.pooled * s + other.pooled.to(to.pooled) * (1 - s)
    return (dataclasses.replace(to, embeds=to.embeds * s + mixed * (1 - s), pooled=pooled,
                                empty_prompt=to.empty_prompt and s == 1.0),)


@node("ConditioningConcat", category="conditioning",
      description="Appends conditioning_from's text embeddings to conditioning_to's along the sequence (as "
                  "one longer prompt, each part encoded alone); everything else comes from conditioning_to.",
      inputs=[Input("conditioning_to", CONDITIONING), Input("conditioning_from", CONDITIONING)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_concat(ctx, conditioning_to: Conditioning, conditioning_from: Conditioning):
    to, other = conditioning_to, conditioning_from
    _same_width(to, other, "conditioning_from")
    embeds = torch.cat([to.embeds, other.embeds.to(to.embeds)], dim=1)
    return (dataclasses.replace(to, embeds=embeds, empty_prompt=False),)


@node("ConditioningZeroOut", category="advanced/conditioning",
      description="The same conditioning with its text embeddings and pooled output set to zeros (what SDXL "
                  "base checkpoints use as the negative of an empty prompt).",
      inputs=[Input("conditioning", CONDITIONING)],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def conditioning_zero_out(ctx, conditioning: Conditioning):
    pooled = None if conditioning.pooled is None else torch.zeros_like(conditioning.pooled)
    return (dataclasses.replace(conditioning, embeds=torch.zeros_like(conditioning.embeds), pooled=pooled,
                                empty_prompt=False),)
