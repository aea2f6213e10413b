"""Two image nodes, declared exactly as latentgraph's built-in nodes are.

IMAGE values are float tensors in [0, 1] shaped (batch, channels, height, width). torch comes from
`latentgraph.lazy`: it is imported when a node runs, not when the catalog is listed, so that
`latentgraph nodes` and `validate` stay fast with this pack installed.
"""
from __future__ import annotations

import re

from latentgraph.graph.errors import InputError
from latentgraph.lazy import torch
from latentgraph.nodes.spec import FLOAT, IMAGE, INT, STRING, Input, Output, node

HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")
# ITU-R 601 luma, as Pillow's convert("L") weighs red, green and blue
LUMA = (0.299, 0.587, 0.114)


def parse_color(text: str) -> tuple[float, float, float]:
    """'#ff8800' (or 'ff8800') -> (1.0, 0.533, 0.0)."""
    match = HEX_COLOR.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a colour: write it as #rrggbb, e.g. #ff8800")
    digits = match.group(1)
    return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))


def check_color(values: dict) -> list[tuple[str, str]]:
    """Runs at validation, before anything is computed: a bad colour is reported with the node and input."""
    try:
        parse_color(values["color"])
    except ValueError as exc:
        return [("color", str(exc))]
    return []


@node("ColorTint", category="image/color",
      description="Tints a picture: its brightness (luma) is coloured with `color`, then mixed with the picture "
                  "by `strength` (0 = unchanged, 1 = a monochrome picture in that colour).",
      inputs=[Input("image", IMAGE),
              Input("color", STRING, default="#ff8800", tooltip="The tint, as #rrggbb."),
              Input("strength", FLOAT, default=0.5, min=0.0, max=1.0, step=0.01)],
      outputs=[Output("IMAGE", IMAGE)],
      check=check_color)
def color_tint(ctx, image: torch.Tensor, color: str, strength: float):
    try:
        rgb = parse_color(color)
    except ValueError as exc:  # also when the colour came through a link, after validation
        raise InputError("color", str(exc)) from None
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    luma = (image[:, :3] * weights).sum(dim=1, keepdim=True)
    tinted = luma * torch.tensor(rgb, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return ((image[:, :3] * (1 - strength) + tinted * strength).clamp(0, 1),)


@node("ImagePosterize", category="image/color",
      description="Reduces each channel to `levels` evenly spaced values (2 = pure colours only).",
      inputs=[Input("image", IMAGE), Input("levels", INT, default=4, min=2, max=256, step=1)],
      outputs=[Output("IMAGE", IMAGE)],
      version=1)  # bump when the node's results change for the same inputs: cached results are then redone
def image_posterize(ctx, image: torch.Tensor, levels: int):
    steps = levels - 1
    return ((image * steps).round() / steps,)
