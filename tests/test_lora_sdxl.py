"""LoRA on SDXL: the UNet part gives diffusers' StableDiffusionXLPipeline.load_lora_weights image bit for
bit; the two text encoders' parts equal the encoders with the LoRA merged into their weights."""
from __future__ import annotations

import copy
import dataclasses

import diffusers
import numpy as np
import pytest
import torch
from helpers import add_lora, read_png
from safetensors.torch import load_file
from sdxl_helpers import BASE, loaded, sdxl_models_dir, sdxl_txt2img  # noqa: F401

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.nodes import sdxl
from latentgraph.tiny_random import save_sdxl_loras

RANK, ALPHA = 4, 8  # as save_sdxl_loras writes them


@pytest.fixture
def xl_lora_settings(sdxl_models_dir, tmp_path):  # noqa: F811
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / BASE).symlink_to(sdxl_models_dir / "checkpoints" / BASE)
    save_sdxl_loras(models / "loras", seed=0)
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=models, input=tmp_path / "input", output=tmp_path / "output", temp=tmp_path / "temp",
                    device="cpu")


def with_lora(strength_model, strength_clip, lora="tiny-style.safetensors"):
    return add_lora(sdxl_txt2img(seed=5, steps=5), lora, strength_model, strength_clip)


def test_sdxl_unet_lora_equals_diffusers_load_lora_weights(xl_lora_settings):
    executor = Executor(xl_lora_settings)
    ours = read_png(executor.run(with_lora(0.7, 0.7, "tiny-unet.safetensors")).images[0]["path"])
    plain = read_png(executor.run(sdxl_txt2img(seed=5, steps=5)).images[0]["path"])
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(xl_lora_settings.models / "checkpoints" / BASE)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="linspace")
    pipe.load_lora_weights(xl_lora_settings.models / "loras", weight_name="tiny-unet.safetensors", adapter_name="s")
    pipe.set_adapters(["s"], adapter_weights=[0.7])
    theirs = pipe("a large red circle", num_inference_steps=5, guidance_scale=6.5, height=32, width=32,
                  generator=torch.Generator("cpu").manual_seed(5), output_type="np").images[0]
    assert np.abs(ours.astype(int) - plain).mean() > 1
    assert np.array_equal(ours, (theirs * 255).round().astype("uint8"))


def test_sdxl_text_encoder_loras_equal_their_merged_weights(xl_lora_settings):
    executor = Executor(xl_lora_settings)
    wf = with_lora(0.0, 0.6)
    executor.run(wf)
    ours = executor.cache.get(executor.keys(wf)["pos"]).outputs[0]
    _, clip, _ = loaded(executor, "sdxl")
    lora = load_file(xl_lora_settings.models / "loras" / "tiny-style.safetensors")
    merged = []
    with torch.no_grad():
        for prefix, encoder in zip(("text_encoder", "text_encoder_2"), clip.encoders):
            copy_ = copy.deepcopy(encoder)
            layers = {k.removeprefix(f"{prefix}.").removesuffix(".lora_A.weight") for k in lora
                      if k.startswith(f"{prefix}.") and k.endswith("lora_A.weight")}
            assert layers
            for layer in layers:
                a, b = lora[f"{prefix}.{layer}.lora_A.weight"], lora[f"{prefix}.{layer}.lora_B.weight"]
                flat = not hasattr(copy_, "text_model")  # transformers 5 flattened CLIPTextModel only
                target = copy_.get_submodule(layer.removeprefix("text_model.") if flat else layer)
                target = getattr(target, "base_layer", target)  # the copy holds the injected (switched off) adapter
                target.weight += 0.6 * ALPHA / RANK * (b @ a)
            merged.append(copy_)
        expected = sdxl.encode(dataclasses.replace(clip, encoders=merged, adapters=()), "a large red circle")
        plain = sdxl.encode(clip, "a large red circle")  # adapters are off outside the node
    torch.testing.assert_close(ours.embeds, expected.embeds, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(ours.pooled, expected.pooled, atol=2e-5, rtol=1e-5)
    width = clip.encoders[0].config.hidden_size  # both encoders' parts changed
    assert (ours.embeds[..., :width] - plain.embeds[..., :width]).abs().max() > 1e-2
    assert (ours.embeds[..., width:] - plain.embeds[..., width:]).abs().max() > 1e-2
