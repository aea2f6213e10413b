"""Batches of pictures and latents: joining, repeating, picking."""
from __future__ import annotations

from latentgraph.graph.errors import InputError
from latentgraph.lazy import torch
from latentgraph.nodes.image import center_crop, resize
from latentgraph.nodes.spec import IMAGE, INT, LATENT, Input, Output, node
from latentgraph.nodes.values import Latent

MAX_BATCH = 4096


def _per_latent(latent: Latent, change, batch_size: int) -> Latent:
    """The latent of `batch_size` latents with `change` applied to each of its tensors that hold one
    row per latent (a single encoded picture or mask shared by the batch stays shared)."""
    changes = {name: change(getattr(latent, name)) for name in ("samples", "dist", "noise_mask")
               if getattr(latent, name) is not None and getattr(latent, name).shape[0] == latent.batch_size}
    return latent.replace(**changes, batch_size=batch_size)


@node("ImageBatch", category="image",
      description="Joins two picture batches into one; the second is centre-cropped and resized to the first's size "
                  "if they differ.",
      inputs=[Input("image1", IMAGE), Input("image2", IMAGE)], outputs=[Output("IMAGE", IMAGE)])
def image_batch(ctx, image1: torch.Tensor, image2: torch.Tensor):
    height, width = image1.shape[-2:]
    if image2.shape[-2:] != image1.shape[-2:]:
        image2 = resize(center_crop(image2, width / height), width, height, "bilinear")
    return (torch.cat([image1, image2.to(image1)]),)


@node("RepeatImageBatch", category="image/batch", description="The batch repeated `amount` times.",
      inputs=[Input("image", IMAGE), Input("amount", INT, default=1, min=1, max=64)],
      outputs=[Output("IMAGE", IMAGE)])
def repeat_image_batch(ctx, image: torch.Tensor, amount: int):
    return (image.repeat(amount, 1, 1, 1),)


@node("ImageFromBatch", category="image/batch",
      description="`length` pictures of a batch from `batch_index` on (cut short at the batch's end).",
      inputs=[Input("image", IMAGE), Input("batch_index", INT, default=0, min=0, max=MAX_BATCH - 1),
              Input("length", INT, default=1, min=1, max=MAX_BATCH)],
      outputs=[Output("IMAGE", IMAGE)])
def image_from_batch(ctx, image: torch.Tensor, batch_index: int, length: int):
    start = min(batch_index, image.shape[0] - 1)
    return (image[start:start + length].clone(),)


@node("RepeatLatentBatch", category="latent/batch",
      description="The latent batch repeated `amount` times (with its encoded pictures and masks).",
      inputs=[Input("samples", LATENT), Input("amount", INT, default=1, min=1, max=64)],
      outputs=[Output("LATENT", LATENT)])
def repeat_latent_batch(ctx, samples: Latent, amount: int):
    return (_per_latent(samples, lambda t: t.repeat(amount, *[1] * (t.ndim - 1)), samples.batch_size * amount),)


@node("LatentFromBatch", category="latent/batch",
      description="`length` latents of a batch from `batch_index` on. They are noised afresh from the sampler's "
                  "seed (the batch's own noise is not kept).",
      inputs=[Input("samples", LATENT), Input("batch_index", INT, default=0, min=0, max=63),
              Input("length", INT, default=1, min=1, max=64)],
      outputs=[Output("LATENT", LATENT)])
def latent_from_batch(ctx, samples: Latent, batch_index: int, length: int):
    if batch_index >= samples.batch_size:
        raise InputError("batch_index", f"{batch_index} is past the batch's last latent ({samples.batch_size - 1})")
    kept = min(length, samples.batch_size - batch_index)
    return (_per_latent(samples, lambda t: t[batch_index:batch_index + kept].clone(), kept),)
