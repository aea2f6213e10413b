"""Changing the canvas of a picture: padding for outpainting, cropping, resizing to a pixel count."""
from __future__ import annotations

import math

from latentgraph.lazy import torch
from latentgraph.nodes.image import UPSCALE_METHODS, rescale
from latentgraph.nodes.masks import MAX_SIDE
from latentgraph.nodes.spec import COMBO, FLOAT, IMAGE, INT, MASK, Input, Output, node


def feathered_mask(height: int, width: int, pad: tuple[int, int, int, int], feathering: int) -> torch.Tensor:
    """The outpainting mask over the padded canvas: 1 on the new margins; inside the picture,
    ((feathering - d) / feathering)^2 within `feathering` pixels of a padded side (d: the distance to
    the nearest padded side), 0 further in. `pad`: left, top, right, bottom."""
    left, top, right, bottom = pad
    mask = torch.ones(height + top + bottom, width + left + right)
    inner = torch.zeros(height, width)
    if feathering > 0 and feathering * 2 < height and feathering * 2 < width:
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
        far = torch.full((height, width), float(max(height, width)))
        distance = torch.stack([rows if top else far, height - rows if bottom else far,
                                cols if left else far, width - cols if right else far]).amin(0)
        near = distance < feathering
        inner[near] = ((feathering - distance[near]) / feathering) ** 2
    mask[top:top + height, left:left + width] = inner
    return mask


def _margin(name: str) -> Input:
    return Input(name, INT, default=0, min=0, max=MAX_SIDE, step=8, tooltip=f"Pixels added at the {name}.")


@node("ImagePadForOutpaint", category="image",
      description="Adds grey margins to a picture for outpainting, with the mask of what to paint: the margins, "
                  "fading into the picture over `feathering` pixels. Feed both to VAEEncodeForInpaint.",
      inputs=[Input("image", IMAGE), _margin("left"), _margin("top"), _margin("right"), _margin("bottom"),
              Input("feathering", INT, default=40, min=0, max=MAX_SIDE, step=1,
                    tooltip="How far into the picture the mask fades out (skipped when the picture is not "
                            "more than twice as large).")],
      outputs=[Output("IMAGE", IMAGE), Output("MASK", MASK)])
def image_pad_for_outpaint(ctx, image: torch.Tensor, left: int, top: int, right: int, bottom: int,
                           feathering: int):
    batch, channels, height, width = image.shape
    canvas = torch.full((batch, channels, height + top + bottom, width + left + right), 0.5,
                        dtype=image.dtype, device=image.device)
    canvas[..., top:top + height, left:left + width] = image
    mask = feathered_mask(height, width, (left, top, right, bottom), feathering)
    return canvas, mask[None].to(device=image.device)


def crop_inputs(step: int) -> list[Input]:
    """width, height, x, y in pixels, in multiples of `step` (the smallest size)."""
    return [Input("width", INT, default=512, min=step, max=MAX_SIDE, step=step),
            Input("height", INT, default=512, min=step, max=MAX_SIDE, step=step),
            Input("x", INT, default=0, min=0, max=MAX_SIDE, step=step),
            Input("y", INT, default=0, min=0, max=MAX_SIDE, step=step)]


@node("ImageCrop", category="image/transform",
      description="The part of the picture `width` x `height` pixels large whose top-left corner is at (x, y), "
                  "cut short at the picture's edges.",
      inputs=[Input("image", IMAGE), *crop_inputs(1)],
      outputs=[Output("IMAGE", IMAGE)])
def image_crop(ctx, image: torch.Tensor, width: int, height: int, x: int, y: int):
    x, y = min(x, image.shape[-1] - 1), min(y, image.shape[-2] - 1)
    return (image[..., y:y + height, x:x + width].clone(),)


@node("ImageScaleToTotalPixels", category="image/upscaling",
      description="Resizes, keeping the aspect ratio, to about `megapixels` million pixels (1 = 1024 x 1024).",
      inputs=[Input("image", IMAGE),
              Input("upscale_method", COMBO, default="nearest-exact", choices=UPSCALE_METHODS),
              Input("megapixels", FLOAT, default=1.0, min=0.01, max=16.0, step=0.01)],
      outputs=[Output("IMAGE", IMAGE)])
def image_scale_to_total_pixels(ctx, image: torch.Tensor, upscale_method: str, megapixels: float):
    height, width = image.shape[-2:]
    return (rescale(image, math.sqrt(megapixels * 1024 * 1024 / (width * height)), upscale_method),)


@node("EmptyImage", category="image",
      description="A batch of pictures of one colour (`color` as a 0xRRGGBB number).",
      inputs=[Input("width", INT, default=512, min=1, max=MAX_SIDE, step=1),
              Input("height", INT, default=512, min=1, max=MAX_SIDE, step=1),
              Input("batch_size", INT, default=1, min=1, max=4096),
              Input("color", INT, default=0, min=0, max=0xFFFFFF, step=1, tooltip="0xRRGGBB, e.g. 16711680 for red.")],
      outputs=[Output("IMAGE", IMAGE)])
def empty_image(ctx, width: int, height: int, batch_size: int, color: int):
    rgb = torch.tensor([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=torch.float32) / 255
    return (rgb.view(1, 3, 1, 1).expand(batch_size, 3, height, width).clone(),)


FLIPS = {"x-axis: vertically": -2, "y-axis: horizontally": -1}  # ComfyUI's names -> the dimension reversed


@node("ImageFlip", category="image/transform", description="Mirrors the picture upside down or left to right.",
      inputs=[Input("image", IMAGE), Input("flip_method", COMBO, default="x-axis: vertically", choices=list(FLIPS))],
      outputs=[Output("IMAGE", IMAGE)])
def image_flip(ctx, image: torch.Tensor, flip_method: str):
    return (image.flip(FLIPS[flip_method]),)


ROTATIONS = {"none": 0, "90 degrees": 1, "180 degrees": 2, "270 degrees": 3}  # quarter turns, clockwise


@node("ImageRotate", category="image/transform", description="Turns the picture clockwise by quarter turns.",
      inputs=[Input("image", IMAGE), Input("rotation", COMBO, default="none", choices=list(ROTATIONS))],
      outputs=[Output("IMAGE", IMAGE)])
def image_rotate(ctx, image: torch.Tensor, rotation: str):
    return (torch.rot90(image, ROTATIONS[rotation], dims=(-1, -2)).clone(),)  # from width towards height: clockwise
