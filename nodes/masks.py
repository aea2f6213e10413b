"""Mask nodes, as ComfyUI's of the same names. MASK values are float tensors in [0, 1], shaped
(batch, height, width); 1 marks the part to repaint."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from latentgraph.nodes.spec import BOOLEAN, COMBO, IMAGE, INT, MASK, Input, Output, node

CHANNELS = ["red", "green", "blue"]


def grow(mask: torch.Tensor, pixels: int, tapered: bool = False) -> torch.Tensor:
    """Dilate (pixels > 0) or erode (< 0) by that many pixels, one 3x3 neighbourhood at a time;
    `tapered` uses the cross (no diagonals), which rounds the corners."""
    out = mask[:, None].float() if pixels >= 0 else 1 - mask[:, None].float()
    for _ in range(abs(pixels)):
        if tapered:
            padded = F.pad(out, (1, 1, 1, 1))
            out = torch.stack([out, padded[..., :-2, 1:-1], padded[..., 2:, 1:-1],
                               padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]]).amax(0)
        else:
            out = F.max_pool2d(out, 3, stride=1, padding=1)
    out = out if pixels >= 0 else 1 - out
    return out[:, 0].to(mask.dtype)


@node("InvertMask", category="mask", description="1 - mask: the other part gets repainted.",
      inputs=[Input("mask", MASK)], outputs=[Output("MASK", MASK)])
def invert_mask(ctx, mask: torch.Tensor):
    return (1.0 - mask,)


@node("GrowMask", category="mask",
      description="Grows the mask by `expand` pixels (shrinks it if negative), e.g. so that an inpainted part "
                  "blends into its surroundings.",
      inputs=[Input("mask", MASK),
              Input("expand", INT, default=0, min=-16384, max=16384, step=1),
              Input("tapered_corners", BOOLEAN, default=True,
                    tooltip="Grow by the 4 nearest neighbours only, which rounds the corners.")],
      outputs=[Output("MASK", MASK)])
def grow_mask(ctx, mask: torch.Tensor, expand: int, tapered_corners: bool):
    return (grow(mask, expand, tapered_corners),)


@node("ImageToMask", category="mask", description="One colour channel of an image as a mask.",
      inputs=[Input("image", IMAGE), Input("channel", COMBO, default="red", choices=CHANNELS)],
      outputs=[Output("MASK", MASK)])
def image_to_mask(ctx, image: torch.Tensor, channel: str):
    return (image[:, CHANNELS.index(channel)],)


@node("MaskToImage", category="mask", description="A mask as a grey image (to preview or save it).",
      inputs=[Input("mask", MASK)], outputs=[Output("IMAGE", IMAGE)])
def mask_to_image(ctx, mask: torch.Tensor):
    return (mask[:, None].expand(-1, 3, -1, -1).clone(),)
