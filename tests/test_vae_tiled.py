"""VAEDecodeTiled / VAEEncodeTiled: a graph with them equals diffusers' pipelines with the VAE's own tiling
switched on (same tiles), and the shared VAE is left untiled for the next node."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, to_img2img, txt2img
from PIL import Image

from latentgraph.graph.errors import NodeError

TILE, OVERLAP = 64, 16  # pixels: a 128 x 128 picture is then 3 x 3 overlapping tiles


def tiled(workflow: dict, decode: bool = True, encode: bool = False) -> dict:
    nodes, extra = workflow["nodes"], {"tile_size": TILE, "overlap": OVERLAP, "temporal_size": 64,
                                       "temporal_overlap": 8}
    if decode:
        nodes["decode"]["type"] = "VAEDecodeTiled"
        nodes["decode"]["inputs"].update(extra)
    if encode:
        nodes["encode"]["type"] = "VAEEncodeTiled"
        nodes["encode"]["inputs"].update(extra)
    return workflow


def pipeline(executor, cls):
    ((model, clip, vae),) = executor.loaded_models()
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace")
    pipe = cls(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
               scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe, vae


def with_diffusers_tiling(vae, run):
    model = vae.vae
    model.enable_tiling()
    model.tile_sample_min_size, model.tile_latent_min_size = TILE, TILE // vae.scale_factor
    model.tile_overlap_factor = OVERLAP / TILE
    try:
        return (run() * 255).round().astype("uint8")[0]
    finally:
        model.disable_tiling()


def test_decode_tiled_equals_the_pipeline_with_vae_tiling(executor):
    prompt = "a large red circle on a blue background"
    ours = read_png(executor.run(tiled(txt2img(prompt=prompt, seed=4, steps=4, width=128, height=128)))
                    .images[0]["path"])
    pipe, vae = pipeline(executor, diffusers.StableDiffusionPipeline)
    assert not vae.vae.use_tiling and vae.vae.tile_sample_min_size != TILE  # put back after the node

    def run():
        return pipe(prompt, negative_prompt="", num_inference_steps=4, guidance_scale=6.0, height=128, width=128,
                    generator=torch.Generator().manual_seed(4), output_type="np").images
    theirs = with_diffusers_tiling(vae, run)
    assert ours.std() > 1 and np.array_equal(ours, theirs)
    untiled = read_png(executor.run(txt2img(prompt=prompt, seed=4, steps=4, width=128, height=128))
                       .images[0]["path"])
    assert not np.array_equal(ours, untiled)  # the tiles did change the pixels: tiling took effect
    assert np.array_equal(untiled, (run() * 255).round().astype("uint8")[0])


def test_encode_and_decode_tiled_img2img_equals_the_pipeline(executor, settings):
    rng = np.random.default_rng(1)
    picture = Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    picture.save(settings.input / "big.png")
    workflow = tiled(to_img2img(txt2img(seed=6, steps=6, cfg=7.0), "big.png", 0.6), encode=True)
    ours = read_png(executor.run(workflow).images[0]["path"])
    pipe, vae = pipeline(executor, diffusers.StableDiffusionImg2ImgPipeline)
    theirs = with_diffusers_tiling(vae, lambda: pipe(
        "a red circle", image=picture, strength=0.6, negative_prompt="", num_inference_steps=6, guidance_scale=7.0,
        generator=torch.Generator().manual_seed(6), output_type="np").images)
    assert np.array_equal(ours, theirs)


def test_a_tile_off_the_vae_grid_is_refused_naming_the_input(executor):
    workflow = tiled(txt2img(steps=2, width=128, height=128))
    workflow["nodes"]["decode"]["inputs"]["tile_size"] = 65  # the tiny VAE halves: 65 px is no whole latent cell
    with pytest.raises(NodeError) as refused:
        executor.run(workflow)
    assert (refused.value.error.node_id, refused.value.error.input) == ("decode", "tile_size")
