"""Image nodes: loading, saving, previewing, sharpening and resizing pictures.

IMAGE values are float tensors in [0, 1], shaped (batch, channels, height, width), on the compute
device.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

from latentgraph.graph.errors import InputError
from latentgraph.graph.png_metadata import png_info
from latentgraph.lazy import F, torch
from latentgraph.nodes import folders
from latentgraph.nodes.spec import BOOLEAN, COMBO, FLOAT, IMAGE, INT, MASK, STRING, Input, Output, node

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """As diffusers' image processor: scale by 255, round, cast to uint8."""
    array = images.detach().cpu().permute(0, 2, 3, 1).float().numpy()
    return [Image.fromarray(a) for a in (array * 255).round().astype("uint8")]


def from_pil(image: Image.Image, device) -> torch.Tensor:
    """As diffusers' image processor, down to the memory layout (channels last), which decides the
    convolution kernels a VAE encode runs and so its last bits."""
    array = np.array(image.convert("RGB")).astype(np.float32)[None] / 255.0
    return torch.from_numpy(array.transpose(0, 3, 1, 2)).to(device)


def _open_input(ctx, image: str) -> Image.Image:
    path = folders.find_input_image(ctx.settings, image)
    if path is None:
        raise InputError("image", f"{image!r} is not in the input folder")
    try:
        with Image.open(path) as picture:
            picture = ImageOps.exif_transpose(picture)
            picture.load()
            return picture
    except (OSError, ValueError) as exc:  # the message names the file by its name, not the server's path
        raise InputError("image", f"{image!r} is not a readable image ({type(exc).__name__})") from None


def _channel(picture: Image.Image, channel: str, device) -> torch.Tensor:
    """One channel as a (1, height, width) mask. 'alpha' is inverted, as ComfyUI reads it: the
    transparent part (erased in a paint program) is the part to repaint; no alpha means no mask."""
    if channel == "alpha":
        if "A" not in picture.getbands() and "transparency" not in picture.info:
            return torch.zeros(1, picture.height, picture.width, device=device)
        values = 1.0 - np.array(picture.convert("RGBA"))[..., 3].astype(np.float32) / 255.0
    else:
        values = np.array(picture.convert("RGB"))[..., "rgb".index(channel[0])].astype(np.float32) / 255.0
    return torch.from_numpy(values)[None].to(device)


@node("LoadImage", category="image",
      description="Loads a picture from the input folder, and its transparent part as a mask (1 where the "
                  "picture is transparent: the part to repaint).",
      inputs=[Input("image", COMBO, choices_from="input_images", image_upload=True, file_folder="input",
                    tooltip="A file in the input folder (upload one in the editor).")],
      outputs=[Output("IMAGE", IMAGE), Output("MASK", MASK)])
def load_image(ctx, image: str):
    picture = _open_input(ctx, image)
    return from_pil(picture, ctx.device), _channel(picture, "alpha", ctx.device)


@node("LoadImageMask", category="mask",
      description="Loads one channel of a picture in the input folder as a mask (1 = repaint). The alpha "
                  "channel is inverted (transparent = repaint), as ComfyUI reads it.",
      inputs=[Input("image", COMBO, choices_from="input_images", image_upload=True, file_folder="input",
                    tooltip="A file in the input folder (upload one in the editor)."),
              Input("channel", COMBO, default="alpha", choices=["alpha", "red", "green", "blue"])],
      outputs=[Output("MASK", MASK)])
def load_image_mask(ctx, image: str, channel: str):
    return (_channel(_open_input(ctx, image), channel, ctx.device),)


def output_path(root: Path, prefix: str) -> tuple[Path, str]:
    """A new file for `prefix` ('name' or 'sub/folder/name') inside root, ComfyUI-style numbering."""
    pure = PurePosixPath(prefix.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.name or prefix.strip() == "":
        raise InputError("filename_prefix", f"{prefix!r} must be a name inside the output folder")
    folder = root.joinpath(*pure.parts[:-1])
    folder.mkdir(parents=True, exist_ok=True)
    taken = [p.name for p in folder.glob(f"{pure.name}_*_.png")]
    numbers = [int(n[len(pure.name) + 1:-5]) for n in taken if n[len(pure.name) + 1:-5].isdigit()]
    counter = max(numbers, default=0) + 1
    filename = f"{pure.name}_{counter:05d}_.png"
    return folder / filename, (PurePosixPath(*pure.parts[:-1]) / filename).as_posix()


DATE_TOKENS = (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("hh", "%H"), ("mm", "%M"), ("ss", "%S"))
DATE_PARTS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}
UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def expand_prefix(prefix: str, workflow: dict | None, images: torch.Tensor, now: datetime | None = None) -> str:
    """ComfyUI's filename_prefix placeholders: %date:yyyy-MM-dd hh-mm-ss% (any of those parts),
    %year% %month% %day% %hour% %minute% %second%, %width% %height% of the pictures, and
    %NODE.INPUT%, the value of a node's input (NODE: its title or id). Unknown ones stay as written;
    values from the workflow cannot add folders (separators become "_")."""
    now = now or datetime.now()
    nodes = (workflow or {}).get("nodes", {})

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key.startswith("date:"):
            out = key[5:]
            for token, code in DATE_TOKENS:
                out = out.replace(token, now.strftime(code))
            return out
        if key in DATE_PARTS:
            return now.strftime(DATE_PARTS[key])
        if key in ("width", "height"):
            return str(images.shape[-1] if key == "width" else images.shape[-2])
        name, _, inp = key.rpartition(".")
        for node_id, spec in nodes.items():
            if name in (node_id, spec.get("title")) and inp in spec.get("inputs", {}):
                found = spec["inputs"][inp]
                if not isinstance(found, dict):  # a constant, not a link
                    return UNSAFE.sub("_", str(found))[:100]
        return match.group(0)
    return re.sub(r"%([^%]+)%", value, prefix)


def save_images(images: torch.Tensor, root: Path, prefix: str, kind: str, workflow: dict | None) -> list[dict]:
    prefix = expand_prefix(prefix, workflow, images)
    saved = []
    for picture in to_pil(images):
        path, name = output_path(root, prefix)
        picture.save(path, pnginfo=png_info(workflow) if workflow is not None else None, compress_level=4)
        saved.append({"kind": kind, "filename": name, "path": str(path)})
    return saved


@node("SaveImage", category="image",
      description="Saves PNGs into the output folder, with the workflow embedded so the file reopens as it.",
      inputs=[Input("images", IMAGE),
              Input("filename_prefix", STRING, default="latentgraph",
                    tooltip="File name start; may include subfolders of the output folder, and ComfyUI's "
                            "placeholders: %date:yyyy-MM-dd%, %width%, %height%, %NODE.INPUT% (a node's input "
                            "by title or id, e.g. %KSampler.seed%).")],
      outputs=[], output_node=True)
def save_image(ctx, images: torch.Tensor, filename_prefix: str):
    ctx.show(images=save_images(images, ctx.settings.output, filename_prefix, "output", ctx.workflow))
    return ()


@node("PreviewImage", category="image", description="Shows images without keeping them (temp folder).",
      inputs=[Input("images", IMAGE)], outputs=[], output_node=True)
def preview_image(ctx, images: torch.Tensor):
    ctx.show(images=save_images(images, ctx.settings.temp, f"preview_{uuid.uuid4().hex[:8]}", "temp", None))
    return ()


def gaussian_blur(images: torch.Tensor, radius: int, sigma: float) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    horizontal = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(horizontal, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


@node("ImageSharpen", category="image/postprocessing",
      description="Unsharp mask: adds alpha times the difference between the image and its Gaussian blur.",
      inputs=[Input("image", IMAGE),
              Input("sharpen_radius", INT, default=1, min=1, max=31, step=1),
              Input("sigma", FLOAT, default=1.0, min=0.1, max=10.0, step=0.01),
              Input("alpha", FLOAT, default=1.0, min=0.0, max=5.0, step=0.01)],
      outputs=[Output("IMAGE", IMAGE)])
def image_sharpen(ctx, image: torch.Tensor, sharpen_radius: int, sigma: float, alpha: float):
    radius = min(sharpen_radius, min(image.shape[-2:]) - 1)  # reflect padding needs radius < side
    if radius < 1 or alpha == 0:
        return (image,)
    blurred = gaussian_blur(image, radius, sigma)
    return ((image + alpha * (image - blurred)).clamp(0, 1),)


def center_crop(tensor: torch.Tensor, aspect: float) -> torch.Tensor:
    """The largest centred part of an image or latent batch with this width / height ratio."""
    h, w = tensor.shape[-2:]
    if w / h > aspect:
        keep = max(1, round(h * aspect))
        return tensor[..., :, (w - keep) // 2:(w - keep) // 2 + keep]
    keep = max(1, round(w / aspect))
    return tensor[..., (h - keep) // 2:(h - keep) // 2 + keep, :]


def both_zero(values: dict) -> list[tuple[str, str]]:
    return [("width", "width and height cannot both be 0")] if values["width"] == values["height"] == 0 else []


def resize(images: torch.Tensor, width: int, height: int, method: str) -> torch.Tensor:
    if method == "lanczos":  # PIL's Lanczos on float planes: no rounding to 8 bits
        planes = [[torch.from_numpy(np.array(Image.fromarray(c.cpu().float().numpy(), mode="F")
                                               .resize((width, height), Image.Resampling.LANCZOS)))
                   for c in img] for img in images]
        return torch.stack([torch.stack(p) for p in planes]).to(images).clamp(0, 1)
    extra = {"align_corners": False, "antialias": True} if method in ("bilinear", "bicubic") else {}
    return F.interpolate(images, size=(height, width), mode=method, **extra).clamp(0, 1)


@node("ImageScale", category="image/upscaling",
      description="Resizes to a width and height (0 keeps the aspect ratio), optionally center-cropping first.",
      inputs=[Input("image", IMAGE),
              Input("upscale_method", COMBO, default="nearest-exact", choices=UPSCALE_METHODS),
              Input("width", INT, default=512, min=0, max=16384, step=1),
              Input("height", INT, default=512, min=0, max=16384, step=1),
              Input("crop", COMBO, default="disabled", choices=["disabled", "center"])],
      outputs=[Output("IMAGE", IMAGE)],
      check=both_zero)
def image_scale(ctx, image: torch.Tensor, upscale_method: str, width: int, height: int, crop: str):
    h, w = image.shape[-2:]
    width = width or max(1, round(w * height / h))
    height = height or max(1, round(h * width / w))
    if crop == "center":
        image = center_crop(image, width / height)
    return (resize(image, width, height, upscale_method),)


@node("ImageScaleBy", category="image/upscaling", description="Resizes by a factor.",
      inputs=[Input("image", IMAGE),
              Input("upscale_method", COMBO, default="nearest-exact", choices=UPSCALE_METHODS),
              Input("scale_by", FLOAT, default=1.0, min=0.01, max=8.0, step=0.01)],
      outputs=[Output("IMAGE", IMAGE)])
def image_scale_by(ctx, image: torch.Tensor, upscale_method: str, scale_by: float):
    return (rescale(image, scale_by, upscale_method),)


def rescale(image: torch.Tensor, factor: float, method: str) -> torch.Tensor:
    """Resized by a factor, each side rounded to whole pixels."""
    h, w = image.shape[-2:]
    return resize(image, max(1, round(w * factor)), max(1, round(h * factor)), method)


@node("ImageBlur", category="image/postprocessing", description="Gaussian blur.",
      inputs=[Input("image", IMAGE),
              Input("blur_radius", INT, default=1, min=1, max=31, step=1),
              Input("sigma", FLOAT, default=1.0, min=0.1, max=10.0, step=0.1)],
      outputs=[Output("IMAGE", IMAGE)])
def image_blur(ctx, image: torch.Tensor, blur_radius: int, sigma: float):
    radius = min(blur_radius, min(image.shape[-2:]) - 1)  # reflect padding needs radius < side
    return (gaussian_blur(image, radius, sigma) if radius >= 1 else image,)


def _soft_light(base: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """The W3C compositing spec's soft-light (base: the bottom picture, top: the one laid over it)."""
    lift = torch.where(base <= 0.25, ((16 * base - 12) * base + 4) * base, torch.sqrt(base))
    return torch.where(top <= 0.5, base - (1 - 2 * top) * base * (1 - base), base + (2 * top - 1) * (lift - base))


BLEND_MODES = {  # (image1, image2) -> the blended picture, before the blend factor mixes it with image1
    "normal": lambda a, b: b,
    "multiply": lambda a, b: a * b,
    "screen": lambda a, b: 1 - (1 - a) * (1 - b),
    "overlay": lambda a, b: torch.where(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b)),
    "soft_light": _soft_light,
    "difference": lambda a, b: a - b,  # as ComfyUI: signed, then clamped, not |a - b|
}


@node("ImageBlend", category="image/postprocessing",
      description="Lays image2 over image1 with a blend mode, mixed in by `blend_factor` (0 = image1 only). "
                  "image2 is centre-cropped and resized to image1's size if they differ.",
      inputs=[Input("image1", IMAGE), Input("image2", IMAGE),
              Input("blend_factor", FLOAT, default=0.5, min=0.0, max=1.0, step=0.01),
              Input("blend_mode", COMBO, default="normal", choices=list(BLEND_MODES))],
      outputs=[Output("IMAGE", IMAGE)])
def image_blend(ctx, image1: torch.Tensor, image2: torch.Tensor, blend_factor: float, blend_mode: str):
    height, width = image1.shape[-2:]
    if image2.shape[-2:] != image1.shape[-2:]:
        image2 = resize(center_crop(image2, width / height), width, height, "bicubic")
    blended = BLEND_MODES[blend_mode](image1, image2.to(image1))
    return ((image1 * (1 - blend_factor) + blended * blend_factor).clamp(0, 1),)


@node("ImageInvert", category="image", description="1 - image: the colour negative.",
      inputs=[Input("image", IMAGE)], outputs=[Output("IMAGE", IMAGE)])
def image_invert(ctx, image: torch.Tensor):
    return (1.0 - image,)


@node("ImageCompositeMasked", category="image",
      description="Pastes `source` onto `destination` with its top-left corner at (x, y), through `mask` where "
                  "one is given (1 = source). E.g. after inpainting, the new part over the untouched original.",
      inputs=[Input("destination", IMAGE), Input("source", IMAGE),
              Input("x", INT, default=0, min=0, max=16384, step=1),
              Input("y", INT, default=0, min=0, max=16384, step=1),
              Input("resize_source", BOOLEAN, default=False, tooltip="Resize the source to the destination first."),
              Input("mask", MASK, required=False, tooltip="The source's mask (resized to the source if needed).")],
      outputs=[Output("IMAGE", IMAGE)])
def image_composite_masked(ctx, destination: torch.Tensor, source: torch.Tensor, x: int, y: int,
                           resize_source: bool, mask: torch.Tensor | None = None):
    if resize_source:
        source = resize(source, destination.shape[-1], destination.shape[-2], "bilinear")
    if mask is None:
        mask = torch.ones(1, *source.shape[-2:], device=source.device)
    mask = mask[:, None].to(source)
    if mask.shape[-2:] != source.shape[-2:]:
        mask = F.interpolate(mask, size=source.shape[-2:], mode="bilinear", align_corners=False)

    def through_mask(region: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        m = mask[..., :part.shape[-2], :part.shape[-1]]
        return part * m + region * (1 - m)
    return (paste(destination, source, x, y, through_mask),)


def paste(destination: torch.Tensor, source: torch.Tensor, x: int, y: int, combine) -> torch.Tensor:
    """`destination` with `combine(region, source part)` where `source`, its top-left corner at (x, y),
    overlaps it (the source cut at the destination's edges); images and masks alike."""
    out = destination.clone()
    h, w = min(source.shape[-2], out.shape[-2] - y), min(source.shape[-1], out.shape[-1] - x)
    if h > 0 and w > 0:
        out[..., y:y + h, x:x + w] = combine(out[..., y:y + h, x:x + w], source[..., :h, :w])
    return out
