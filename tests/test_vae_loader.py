"""VAELoader: a VAE from models/vae (diffusers folder or single .safetensors file) decodes instead of
the checkpoint's own, as diffusers' pipeline does with that VAE; pickles and missing names are refused."""
from __future__ import annotations

import json

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, txt2img
from safetensors.torch import save_file

from latentgraph import tiny_random
from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.nodes import folders, single_file


@pytest.fixture
def vae_settings(models_dir, tmp_path):
    """The tiny checkpoint, and in models/vae a VAE of another seed as a diffusers folder and as a
    single file in the original layout (one named as an SDXL VAE)."""
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints" / "tiny-sd15").symlink_to(models_dir / "checkpoints" / "tiny-sd15")
    vae = tiny_random.sd15_components(seed=5)["vae"]
    vae.save_pretrained(models / "vae" / "other-vae", safe_serialization=True)
    state = {k: v.contiguous() for k, v in tiny_random.vae_to_ldm(vae).items()}
    save_file(state, str(models / "vae" / "other.safetensors"))
    save_file(state, str(models / "vae" / "other-xl.safetensors"))
    (models / "vae" / "old.pt").write_bytes(b"not loaded")
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=models, input=tmp_path / "input", output=tmp_path / "output", temp=tmp_path / "temp",
                    device="cpu")


@pytest.fixture
def tiny_configs(tmp_path, monkeypatch):
    """Config folders for single files with the tiny VAE's shapes: SD1.5's scaling, and another
    scaling for SDXL's, to tell which one a file was read with."""
    config = json.loads((tmp_path / "models" / "vae" / "other-vae" / "config.json").read_text())
    for family, scaling in (("sd15", 0.18215), ("sdxl", 0.13025)):
        folder = tmp_path / "configs" / family / "vae"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(dict(config, scaling_factor=scaling)))
    monkeypatch.setattr(single_file, "CONFIGS", tmp_path / "configs")


def with_vae(name: str) -> dict:
    wf = txt2img(prompt="a large red circle", seed=6)
    wf["nodes"]["vae"] = {"type": "VAELoader", "inputs": {"vae_name": name}}
    wf["nodes"]["decode"]["inputs"]["vae"] = {"node": "vae", "output": "VAE"}
    return wf


def test_the_vae_folder_lists_folders_and_files(vae_settings):
    assert sorted(folders.list_vaes(vae_settings)) == ["other-vae", "other-xl.safetensors", "other.safetensors"]
    assert "old.pt" in folders.list_vaes(vae_settings, include_pickles=True)


@pytest.mark.parametrize("name", ["other-vae", "other.safetensors"])
def test_loaded_vae_decodes_as_the_pipeline_with_that_vae(vae_settings, tiny_configs, name):
    executor = Executor(vae_settings)
    ours = read_png(executor.run(with_vae(name)).images[0]["path"])
    own = read_png(executor.run(txt2img(prompt="a large red circle", seed=6)).images[0]["path"])
    model, clip, _ = next(m for m in executor.loaded_models() if len(m) == 3)  # the checkpoint's
    other = diffusers.AutoencoderKL.from_pretrained(vae_settings.models / "vae" / "other-vae")
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace")
    pipe = diffusers.StableDiffusionPipeline(vae=other, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                             unet=model.unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    theirs = pipe("a large red circle", negative_prompt="", num_inference_steps=6, guidance_scale=6.0, height=64,
                  width=64, generator=torch.Generator("cpu").manual_seed(6), output_type="np").images[0]
    assert np.array_equal(ours, (theirs * 255).round().astype("uint8"))
    assert (ours != own).any()  # not the checkpoint's own VAE


def test_single_file_weights_intact_and_xl_names_take_sdxl_scaling(vae_settings, tiny_configs):
    original = diffusers.AutoencoderKL.from_pretrained(vae_settings.models / "vae" / "other-vae")
    plain = single_file.load_vae(vae_settings.models / "vae" / "other.safetensors", torch.float32)
    xl = single_file.load_vae(vae_settings.models / "vae" / "other-xl.safetensors", torch.float32)
    for key, tensor in original.state_dict().items():
        assert torch.equal(plain.state_dict()[key], tensor), key
    assert plain.config.scaling_factor == 0.18215 and xl.config.scaling_factor == 0.13025


@pytest.mark.parametrize("name, words", [("old.pt", "pickle"), ("absent.safetensors", "not found")])
def test_pickles_and_missing_vaes_are_refused_naming_the_input(vae_settings, name, words):
    with pytest.raises(WorkflowInvalid) as refused:
        Executor(vae_settings).run(with_vae(name))
    assert any(e.node_id == "vae" and e.input == "vae_name" and words in e.message for e in refused.value.errors)
