"""Mask nodes, as ComfyUI's of the same names. MASK values are float tensors in [0, 1], shaped
(batch, height, width); 1 marks the part to repaint."""
from __future__ import annotations

from latentgraph.lazy import F, torch
from latentgraph.nodes.image import paste
from latentgraph.nodes.spec import BOOLEAN, COMBO, FLOAT, IMAGE, INT, MASK, Input, Output, node

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


MAX_SIDE = 16384


def _side(name: str, default: int = 0) -> Input:
    return Input(name, INT, default=default, min=0, max=MAX_SIDE, step=1)


@node("SolidMask", category="mask", description="A mask of one value everywhere.",
      inputs=[Input("value", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01),
              Input("width", INT, default=512, min=1, max=MAX_SIDE, step=1),
              Input("height", INT, default=512, min=1, max=MAX_SIDE, step=1)],
      outputs=[Output("MASK", MASK)])
def solid_mask(ctx, value: float, width: int, height: int):
    return (torch.full((1, height, width), float(value)),)


@node("ThresholdMask", category="mask", description="1 where the mask is above `value`, 0 elsewhere.",
      inputs=[Input("mask", MASK), Input("value", FLOAT, default=0.5, min=0.0, max=1.0, step=0.01)],
      outputs=[Output("MASK", MASK)])
def threshold_mask(ctx, mask: torch.Tensor, value: float):
    return ((mask > value).to(mask.dtype),)


def edge_ramp(size: int, over: int) -> torch.Tensor:
    """Factors that fade in from an edge: (i + 1) / over at the first `over` of `size` positions, 1 after."""
    if over <= 0:
        return torch.ones(size)
    return torch.clamp((torch.arange(size) + 1) / over, max=1.0)


def fade_both_ends(size: int, start: int, end: int) -> torch.Tensor:
    """edge_ramp from the first position over `start` times edge_ramp from the last over `end`."""
    return edge_ramp(size, start) * edge_ramp(size, end).flip(0)


@node("FeatherMask", category="mask",
      description="Fades the mask out towards its edges: linearly over `left`, `top`, `right` and `bottom` pixels.",
      inputs=[Input("mask", MASK), _side("left"), _side("top"), _side("right"), _side("bottom")],
      outputs=[Output("MASK", MASK)])
def feather_mask(ctx, mask: torch.Tensor, left: int, top: int, right: int, bottom: int):
    height, width = mask.shape[-2:]
    rows = fade_both_ends(height, min(top, height), min(bottom, height))
    cols = fade_both_ends(width, min(left, width), min(right, width))
    return (mask * (rows[:, None] * cols[None, :]).to(mask),)


@node("CropMask", category="mask", description="The part of the mask `width` x `height` large at (x, y).",
      inputs=[Input("mask", MASK), _side("x"), _side("y"), Input("width", INT, default=512, min=1, max=MAX_SIDE),
              Input("height", INT, default=512, min=1, max=MAX_SIDE)],
      outputs=[Output("MASK", MASK)])
def crop_mask(ctx, mask: torch.Tensor, x: int, y: int, width: int, height: int):
    return (mask[..., y:y + height, x:x + width].clone(),)


OPERATIONS = {
    "multiply": lambda d, s: d * s,
    "add": lambda d, s: d + s,
    "subtract": lambda d, s: d - s,
    "and": lambda d, s: ((d > 0.5) & (s > 0.5)).to(d.dtype),
    "or": lambda d, s: ((d > 0.5) | (s > 0.5)).to(d.dtype),
    "xor": lambda d, s: ((d > 0.5) ^ (s > 0.5)).to(d.dtype),
}


@node("MaskComposite", category="mask",
      description="Combines `source`, placed with its top-left corner at (x, y), into `destination` where they "
                  "overlap: multiply, add, subtract (clamped to 0-1), or and / or / xor of the masks above 0.5.",
      inputs=[Input("destination", MASK), Input("source", MASK), _side("x"), _side("y"),
              Input("operation", COMBO, default="multiply", choices=list(OPERATIONS))],
      outputs=[Output("MASK", MASK)])
def mask_composite(ctx, destination: torch.Tensor, source: torch.Tensor, x: int, y: int, operation: str):
    return (paste(destination, source, x, y,
                  lambda region, part: OPERATIONS[operation](region, part.to(region)).clamp(0, 1)),)
