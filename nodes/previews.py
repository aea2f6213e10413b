"""Live previews: a cheap linear latent -> RGB map instead of a full VAE decode.

The map is fitted once per VAE by least squares on the encodings of a few solid colours, so it
works for any VAE (SD1.5's, SDXL's, the tiny model's) without per-model constants.
"""
from __future__ import annotations

import base64
import io
import threading

from PIL import Image

from latentgraph.lazy import torch

MAX_SIDE = 256


class LatentPreviewer:
    def __init__(self, vae):
        self.vae = vae
        self._map: torch.Tensor | None = None
        self._lock = threading.Lock()

    def _fit(self) -> torch.Tensor:
        vae = self.vae
        generator = torch.Generator().manual_seed(0)
        colours = torch.rand(24, 3, 1, 1, generator=generator)
        side = 8 * 2 ** (len(vae.config.block_out_channels) - 1)
        pixels = colours.expand(-1, -1, side, side) * 2 - 1
        with torch.inference_mode():
            latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mean.float().mean(dim=(2, 3)).cpu()
        features = torch.cat([latents, torch.ones(len(latents), 1)], dim=1)
        target = colours.view(-1, 3) * 2 - 1
        return torch.linalg.lstsq(features, target).solution  # (channels + 1) x 3

    def __call__(self, latents: torch.Tensor) -> str | None:
        """A JPEG data URL of the first image in the batch."""
        with self._lock:
            if self._map is None:
                self._map = self._fit()
        scaling = getattr(self.vae.config, "scaling_factor", 1.0)
        z = latents[0].detach().float().cpu() / scaling  # channels x h x w
        if z.shape[0] + 1 != self._map.shape[0]:
            return None
        rgb = torch.einsum("chw,cd->dhw", z, self._map[:-1]) + self._map[-1].view(3, 1, 1)
        array = ((rgb.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        image = Image.fromarray(array)
        scale = max(1, MAX_SIDE // max(image.size))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) \
            if scale > 1 else image
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
