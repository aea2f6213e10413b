"""Latent nodes: empty latents, the VAE between pixels and latents, latent resizing."""
from __future__ import annotations

import contextlib

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes.image import both_zero, center_crop
from latentgraph.nodes.masks import grow
from latentgraph.nodes.spec import COMBO, FLOAT, IMAGE, INT, LATENT, MASK, VAE, Input, Output, node
from latentgraph.nodes.values import Latent, VAEModel, module_device, module_dtype

LATENT_UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic"]


@node("EmptyLatentImage", category="latent",
      description="A blank latent canvas for txt2img. Its latent size follows the sampling model's VAE "
                  "(width / 8 for SD1.5 and SDXL; the tiny-shapes model's VAE divides by 4).",
      inputs=[Input("width", INT, default=512, min=16, max=16384, step=8, tooltip="Image width in pixels."),
              Input("height", INT, default=512, min=16, max=16384, step=8, tooltip="Image height in pixels."),
              Input("batch_size", INT, default=1, min=1, max=4096, tooltip="Images drawn at once.")],
      outputs=[Output("LATENT", LATENT)])
def empty_latent_image(ctx, width: int, height: int, batch_size: int):
    return (Latent(samples=None, width=width, height=height, batch_size=batch_size),)


@contextlib.contextmanager
def vae_precision(vae):
    """diffusers runs an fp16 VAE marked `force_upcast` (SDXL's overflows in fp16) in float32."""
    upcast = module_dtype(vae) == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        yield module_dtype(vae)
    finally:
        if upcast:
            vae.to(dtype=torch.float16)


def to_vae_space(latents: torch.Tensor, config) -> torch.Tensor:
    """Undo the diffusion model's latent scaling before decoding (diffusers' pipelines)."""
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        shape = (1, len(mean), 1, 1)
        return (latents * torch.tensor(std).view(shape).to(latents) / config.scaling_factor
                + torch.tensor(mean).view(shape).to(latents))
    return latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)


@node("VAEDecode", category="latent", description="Decodes latents into pixels with the VAE.",
      inputs=[Input("samples", LATENT), Input("vae", VAE)],
      outputs=[Output("IMAGE", IMAGE)])
def vae_decode(ctx, samples: Latent, vae: VAEModel):
    model = vae.vae
    latents = samples.samples
    if latents is None:
        f = vae.scale_factor
        latents = torch.zeros(samples.batch_size, vae.latent_channels, samples.height // f, samples.width // f,
                              device=module_device(model))
    with vae_precision(model) as dtype:
        image = vae.decode(to_vae_space(latents.to(dtype), model.config))
    return ((image / 2 + 0.5).clamp(0, 1).float(),)


def centre(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centred height x width part of images or masks (VAEEncode's crop to the VAE's scale)."""
    top, left = (tensor.shape[-2] - height) // 2, (tensor.shape[-1] - width) // 2
    return tensor[..., top:top + height, left:left + width]


@node("VAEEncode", category="latent",
      description="Encodes pixels into latents with the VAE. A sampler given this latent with denoise < 1 does "
                  "img2img, drawing the latent from the encoder's distribution with its seed as diffusers does. "
                  "Images are cropped to a multiple of the VAE's scale factor.",
      inputs=[Input("pixels", IMAGE), Input("vae", VAE)],
      outputs=[Output("LATENT", LATENT)])
def vae_encode(ctx, pixels: torch.Tensor, vae: VAEModel):
    model, f = vae.vae, vae.scale_factor
    h, w = pixels.shape[-2] // f * f, pixels.shape[-1] // f * f
    pixels = centre(pixels, h, w)
    config = model.config
    with vae_precision(model) as dtype:
        dist = model.encode((pixels * 2.0 - 1.0).to(device=model.device, dtype=dtype)).latent_dist
    scaling, shift = config.scaling_factor, getattr(config, "shift_factor", None) or 0.0
    return (Latent(samples=(dist.mean - shift) * scaling, width=w, height=h, batch_size=pixels.shape[0],
                   dist=dist.parameters, scaling_factor=scaling, shift_factor=shift),)


@contextlib.contextmanager
def vae_tiling(vae: VAEModel, tile_size: int, overlap: int):
    """diffusers' own tiling on the shared VAE for one call: tiles of tile_size pixels (tile_size /
    scale latent cells) overlapping by `overlap` pixels, blended linearly; the settings come back after."""
    if tile_size % vae.scale_factor:
        raise InputError("tile_size", f"{tile_size} is not a multiple of this VAE's scale factor, "
                                      f"{vae.scale_factor}")
    model, names = vae.vae, ("use_tiling", "tile_sample_min_size", "tile_latent_min_size", "tile_overlap_factor")
    saved = {name: getattr(model, name) for name in names}
    overlap = min(overlap, tile_size // 4)  # as ComfyUI clamps it
    model.use_tiling, model.tile_sample_min_size = True, tile_size
    model.tile_latent_min_size, model.tile_overlap_factor = tile_size // vae.scale_factor, overlap / tile_size
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


def tiling_inputs(tile_step: int) -> list[Input]:
    """VAEDecodeTiled / VAEEncodeTiled's widgets, in ComfyUI's order and with its defaults."""
    return [Input("tile_size", INT, default=512, min=64, max=4096, step=tile_step,
                  tooltip="Tile side in pixels: the VAE works on one tile at a time, so memory follows the "
                          "tile, not the picture."),
            Input("overlap", INT, default=64, min=0, max=4096, step=32,
                  tooltip="Pixels neighbouring tiles share, blended to hide seams (at most a quarter of the "
                          "tile, as in ComfyUI)."),
            Input("temporal_size", INT, default=64, min=8, max=4096, step=4,
                  tooltip="Frames per tile for video VAEs; an image VAE has no frames and ignores it."),
            Input("temporal_overlap", INT, default=8, min=4, max=4096, step=4,
                  tooltip="Frames neighbouring tiles share, for video VAEs; ignored here.")]


@node("VAEDecodeTiled", category="latent",
      description="VAEDecode one tile at a time (diffusers' tiled decoding), for pictures too large to decode "
                  "at once; seams are blended but pixels differ a little from VAEDecode's.",
      inputs=[Input("samples", LATENT), Input("vae", VAE), *tiling_inputs(32)],
      outputs=[Output("IMAGE", IMAGE)])
def vae_decode_tiled(ctx, samples: Latent, vae: VAEModel, tile_size: int, overlap: int, temporal_size: int,
                     temporal_overlap: int):
    with vae_tiling(vae, tile_size, overlap):
        return vae_decode(ctx, samples, vae)


@node("VAEEncodeTiled", category="latent",
      description="VAEEncode one tile at a time (diffusers' tiled encoding), for pictures too large to encode "
                  "at once.",
      inputs=[Input("pixels", IMAGE), Input("vae", VAE), *tiling_inputs(64)],
      outputs=[Output("LATENT", LATENT)])
def vae_encode_tiled(ctx, pixels: torch.Tensor, vae: VAEModel, tile_size: int, overlap: int, temporal_size: int,
                     temporal_overlap: int):
    with vae_tiling(vae, tile_size, overlap):
        return vae_encode(ctx, pixels, vae)


@node("LatentUpscaleBy", category="latent", description="Resizes latents by a factor (before a second pass).",
      inputs=[Input("samples", LATENT),
              Input("upscale_method", COMBO, default="nearest-exact", choices=LATENT_UPSCALE_METHODS),
              Input("scale_by", FLOAT, default=1.5, min=0.01, max=8.0, step=0.01)],
      outputs=[Output("LATENT", LATENT)])
def latent_upscale_by(ctx, samples: Latent, upscale_method: str, scale_by: float):
    if samples.samples is None:
        width, height = round(samples.width * scale_by), round(samples.height * scale_by)
        return (samples.replace(width=max(8, width // 8 * 8), height=max(8, height // 8 * 8)),)
    lh, lw = samples.samples.shape[-2:]
    factor = samples.pixels_per_cell
    return (_resize_latent(samples, round(lw * scale_by) * factor, round(lh * scale_by) * factor, upscale_method),)

def _resize_latent(samples: Latent, width: int, height: int, method: str) -> Latent:
    """Latents resized so that they decode to about width x height pixels."""
    if samples.samples is None:
        return samples.replace(width=width, height=height)
    factor = samples.pixels_per_cell
    new_h, new_w = max(1, round(height / factor)), max(1, round(width / factor))
    resized = F.interpolate(samples.samples, size=(new_h, new_w), mode=method,
                            **({"align_corners": False} if method in ("bilinear", "bicubic") else {}))
    return samples.replace(samples=resized, dist=None, width=round(new_w * factor), height=round(new_h * factor))


@node("LatentUpscale", category="latent", description="Resizes latents to a pixel width and height (0 keeps the "
                                                      "aspect ratio), optionally center-cropping first.",
      inputs=[Input("samples", LATENT),
              Input("upscale_method", COMBO, default="nearest-exact", choices=LATENT_UPSCALE_METHODS),
              Input("width", INT, default=512, min=0, max=16384, step=8),
              Input("height", INT, default=512, min=0, max=16384, step=8),
              Input("crop", COMBO, default="disabled", choices=["disabled", "center"])],
      outputs=[Output("LATENT", LATENT)],
      check=both_zero)
def latent_upscale(ctx, samples: Latent, upscale_method: str, width: int, height: int, crop: str):
    width = width or max(8, round(samples.width * height / samples.height / 8) * 8)
    height = height or max(8, round(samples.height * width / samples.width / 8) * 8)
    if crop == "center" and samples.samples is not None:
        factor = samples.pixels_per_cell
        cropped = center_crop(samples.samples, width / height)
        samples = samples.replace(samples=cropped, dist=None, width=round(cropped.shape[-1] * factor),
                                  height=round(cropped.shape[-2] * factor))
    return (_resize_latent(samples, width, height, upscale_method),)


@node("SetLatentNoiseMask", category="latent/inpaint",
      description="Marks the part of a latent to repaint: a sampler then denoises only where the mask is 1 and "
                  "puts the rest back from the original at each step, as diffusers' inpaint pipeline does with "
                  "an ordinary (4-channel) model. The mask is binarized at 0.5 and resized to the latent.",
      inputs=[Input("samples", LATENT, tooltip="Usually a VAEEncode of the picture to inpaint."),
              Input("mask", MASK, tooltip="1 where to repaint (LoadImage's MASK: the transparent part).")],
      outputs=[Output("LATENT", LATENT)])
def set_latent_noise_mask(ctx, samples: Latent, mask: torch.Tensor):
    height, width = mask.shape[-2:]
    if height < samples.height or width < samples.width:
        raise InputError("mask", f"the mask is {width}x{height} pixels, smaller than the latent's picture "
                                 f"({samples.width}x{samples.height}): use a mask of the picture's size")
    return (samples.replace(noise_mask=centre(mask, samples.height, samples.width)),)  # as VAEEncode crops


@node("VAEEncodeForInpaint", category="latent/inpaint",
      description="Encodes a picture for inpainting at full denoise: the mask, grown by grow_mask_by pixels, is "
                  "painted grey in the picture before encoding, so nothing of the old content shows through, and "
                  "set as the latent's noise mask (as SetLatentNoiseMask).",
      inputs=[Input("pixels", IMAGE), Input("vae", VAE), Input("mask", MASK),
              Input("grow_mask_by", INT, default=6, min=0, max=64, step=1)],
      outputs=[Output("LATENT", LATENT)])
def vae_encode_for_inpaint(ctx, pixels: torch.Tensor, vae: VAEModel, mask: torch.Tensor, grow_mask_by: int):
    if mask.shape[-2:] != pixels.shape[-2:]:
        raise InputError("mask", f"the mask is {mask.shape[-1]}x{mask.shape[-2]} pixels and the picture "
                                 f"{pixels.shape[-1]}x{pixels.shape[-2]}: they must be the same size")
    grown = grow((mask >= 0.5).to(pixels.dtype), grow_mask_by)
    grey = (pixels - 0.5) * (1 - grown[:, None]) + 0.5
    (latent,) = vae_encode(ctx, grey, vae)
    return set_latent_noise_mask(ctx, latent, grown)
