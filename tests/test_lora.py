"""LoRA nodes: the same image as diffusers' load_lora_weights + set_adapters, and a loaded
checkpoint shared by graphs with and without the LoRA stays unchanged for the ones without."""
from __future__ import annotations

import copy

import diffusers
import numpy as np
import pytest
import torch
from helpers import add_lora, read_png, txt2img
from safetensors.torch import load_file
from transformers import CLIPTextModel

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.tiny_random import save_sd15_loras

RANK, ALPHA = 4, 8  # as save_sd15_loras writes them


@pytest.fixture(scope="module")
def lora_models(models_dir, tmp_path_factory):
    """A models folder with the tiny checkpoint and two LoRAs (random, non-zero weights) for it: one
    for the UNet and the text encoder, one for the UNet only."""
    root = tmp_path_factory.mktemp("lora-models")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "tiny-sd15").symlink_to(models_dir / "checkpoints" / "tiny-sd15")
    save_sd15_loras(root / "loras", seed=1)
    return root


def with_lora(strength_model=0.7, strength_clip=0.7, lora="tiny-style.safetensors", **kwargs):
    return add_lora(txt2img(seed=4, steps=5, **kwargs), lora, strength_model, strength_clip)


@pytest.fixture
def lora_settings(lora_models, tmp_path):
    return Settings(models=lora_models, input=tmp_path, output=tmp_path / "out", temp=tmp_path / "temp", device="cpu")


def test_unet_lora_equals_diffusers_load_lora_weights(lora_settings, lora_models):
    ours = read_png(Executor(lora_settings).run(with_lora(lora="tiny-unet.safetensors")).images[0]["path"])
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(lora_models / "checkpoints" / "tiny-sd15",
                                                             safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="linspace")
    pipe.load_lora_weights(lora_models / "loras", weight_name="tiny-unet.safetensors", adapter_name="style")
    pipe.set_adapters(["style"], adapter_weights=[0.7])
    theirs = pipe("a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=6.0, height=64, width=64,
                  generator=torch.Generator("cpu").manual_seed(4), output_type="np").images[0]
    assert np.array_equal(ours, (theirs * 255).round().astype("uint8"))


def test_text_encoder_lora_equals_its_merged_weights(lora_settings, lora_models):
    """diffusers' own text-encoder LoRA route needs a PEFT newer than PyPI has, so the reference is
    the text encoder with the LoRA merged into its weights: W + strength * alpha / rank * B @ A."""
    executor = Executor(lora_settings)
    wf = with_lora(strength_model=0.0, strength_clip=0.6)
    executor.run(wf)
    ours = executor.cache.get(executor.keys(wf)["pos"]).outputs[0].embeds
    merged = CLIPTextModel.from_pretrained(lora_models / "checkpoints" / "tiny-sd15", subfolder="text_encoder")
    lora = load_file(lora_models / "loras" / "tiny-style.safetensors")
    layers = {k.removeprefix("text_encoder.").removesuffix(".lora_A.weight") for k in lora
              if k.startswith("text_encoder.") and k.endswith("lora_A.weight")}
    assert layers
    with torch.no_grad():
        for layer in layers:
            a, b = lora[f"text_encoder.{layer}.lora_A.weight"], lora[f"text_encoder.{layer}.lora_B.weight"]
            merged.get_submodule(layer.removeprefix("text_model.")).weight += 0.6 * ALPHA / RANK * (b @ a)
        ((_, clip, _),) = executor.loaded_models()
        ids = clip.tokenizers[0]("a red circle", padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids
        expected = merged(ids)[0]
        plain = clip.encoders[0](ids)[0]  # adapters are off outside the node
    torch.testing.assert_close(ours, expected, atol=2e-5, rtol=1e-5)
    assert (ours - plain).abs().max() > 1e-2


def test_the_shared_checkpoint_is_unchanged_for_graphs_without_the_lora(lora_settings):
    plain = txt2img(seed=4, steps=5)
    reference = read_png(Executor(lora_settings).run(plain).images[0]["path"])
    executor = Executor(lora_settings)
    styled = read_png(executor.run(with_lora()).images[0]["path"])
    again = executor.run(plain)
    assert {r.node_id for r in again.report if r.status == "cached"} == {"ckpt", "latent"}
    assert np.array_equal(read_png(again.images[0]["path"]), reference)
    assert not np.array_equal(styled, reference)
    # Strength 0 on both is the plain image too, through the same loaded adapter.
    zero = read_png(executor.run(with_lora(0.0, 0.0)).images[0]["path"])
    assert np.array_equal(zero, reference)


def test_model_and_clip_strengths_act_separately(lora_settings):
    executor = Executor(lora_settings)
    images = {}
    for strengths in [(0.7, 0.0), (0.0, 0.7), (0.7, 0.7)]:
        result = executor.run(with_lora(*strengths))
        images[strengths] = read_png(result.images[0]["path"])
    assert len({im.tobytes() for im in images.values()}) == 3
    changed = copy.deepcopy(with_lora(0.7, 0.5))
    rerun = executor.run(changed)
    assert {r.node_id for r in rerun.report if r.status == "executed"} == {"lora", "pos", "neg", "sampler", "decode",
                                                                           "save"}


def test_missing_lora_is_a_validation_error(lora_settings):
    wf = with_lora()
    wf["nodes"]["lora"]["inputs"]["lora_name"] = "nope.safetensors"
    errors = Executor(lora_settings).validate(wf)
    assert [(e.kind, e.node_id, e.input) for e in errors] == [("not_in_choices", "lora", "lora_name")]
