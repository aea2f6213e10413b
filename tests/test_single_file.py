"""Single-file .safetensors checkpoints in the original key layout load offline, weights intact."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    infer_diffusers_model_type,
)
from helpers import read_png, txt2img
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from latentgraph import tiny_random
from latentgraph.graph.errors import InputError, WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.nodes import single_file

FAMILIES = {
    "sd15": lambda: tiny_random.sd15_components(seed=2),
    "sdxl": lambda: tiny_random.sdxl_components(seed=3),
    "sdxl_refiner": lambda: tiny_random.sdxl_components(seed=4, refiner=True),
}
PIPELINES = {"sd15": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
             "sdxl_refiner": "StableDiffusionXLImg2ImgPipeline"}


def write_family(root, family, components, shipped=False):
    """The checkpoint as one LDM-layout file, and a config folder for its family: the diffusers folder
    of the same pipeline, or (`shipped`) latentgraph's shipped folder with the tiny models' shapes
    (model configs) put in; its tokenizers are then the real CLIP's, from the shared vocabulary."""
    import diffusers

    extra = {"sd15": {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False},
             "sdxl": {}, "sdxl_refiner": {"requires_aesthetics_score": True, "force_zeros_for_empty_prompt": False}}
    pipe = getattr(diffusers, PIPELINES[family])(**components, **extra[family])
    folder = root / ("diffusers" if shipped else "configs") / family
    pipe.save_pretrained(folder, safe_serialization=True)
    if shipped:
        target = root / "configs" / family
        shutil.copytree(single_file.CONFIGS / family, target)
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            if (target / name).is_dir():
                shutil.copy(folder / name / "config.json", target / name / "config.json")
    return tiny_random.save_single_file(root / f"{family}.safetensors", components)


def assert_same_weights(loaded, original):
    ours, theirs = loaded.state_dict(), original.state_dict()
    assert sorted(ours) == sorted(theirs)
    for key, tensor in theirs.items():
        assert torch.equal(ours[key], tensor), key


@pytest.mark.parametrize("family", list(FAMILIES))
def test_single_file_loads_with_weights_equal_to_the_originals(tmp_path, family):
    components = FAMILIES[family]()
    path = write_family(tmp_path, family, components, shipped=True)
    assert single_file.detect_family(path) == (family, PIPELINES[family])

    model, clip, vae = single_file.load(path, "cpu", torch.float32, configs=tmp_path / "configs")
    assert model.family == clip.family == family
    assert_same_weights(model.unet, components["unet"])
    assert_same_weights(vae.vae, components["vae"])
    encoders = [components[n] for n in ("text_encoder", "text_encoder_2") if components.get(n) is not None]
    assert len(clip.encoders) == len(encoders) == len(clip.tokenizers)
    for ours, original in zip(clip.encoders, encoders):
        assert_same_weights(ours, original)
    assert clip.force_zeros_for_empty_prompt == (family == "sdxl")
    assert all(len(tokenizer) == 49408 for tokenizer in clip.tokenizers)  # the shipped, real vocabulary
    assert model.scheduler_config["_class_name"] == ("PNDMScheduler" if family == "sd15" else "EulerDiscreteScheduler")


def test_single_file_checkpoint_runs_as_its_diffusers_folder(tmp_path, monkeypatch):
    """CheckpointLoaderSimple on the .safetensors gives the image of the same model as a folder."""
    models = tmp_path / "models"
    write_family(models, "sd15", tiny_random.sd15_components(seed=0))
    (models / "checkpoints").mkdir()
    (models / "sd15.safetensors").rename(models / "checkpoints" / "tiny.safetensors")
    tiny_random.save_sd15(models / "checkpoints" / "tiny-folder", seed=0)
    monkeypatch.setattr(single_file, "CONFIGS", models / "configs")
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    executor = Executor(Settings(models=models, input=tmp_path / "input", output=tmp_path / "output",
                                 temp=tmp_path / "temp", device="cpu"))
    images = [read_png(executor.run(txt2img(ckpt=name, seed=2, steps=4)).images[0]["path"])
              for name in ("tiny.safetensors", "tiny-folder")]
    assert np.array_equal(images[0], images[1])


def test_shipped_tokenizers_are_clips(tmp_path):
    tokenizer = single_file.clip_tokenizer(single_file.CONFIGS / "sd15" / "tokenizer")
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    ids = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[-1] == 49407  # SD1.5 pads with the end token
    second = single_file.clip_tokenizer(single_file.CONFIGS / "sdxl" / "tokenizer_2")
    assert second("a cat", padding="max_length", max_length=77).input_ids[-1] == 0  # SDXL's second pads with "!"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_shipped_configs_match_the_original_layout(family):
    """The real-size models of the shipped configs, written in the original layout (on the meta device:
    no weights), are recognised as their family and convert back to the same weight names."""
    from accelerate import init_empty_weights

    config = single_file.CONFIGS / family
    index = json.loads((config / "model_index.json").read_text())
    with init_empty_weights():
        components = {"unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")),
                      "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(config / "vae"))}
        for name, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
            if (index.get(name) or [None])[0]:
                components[name] = cls(CLIPTextConfig.from_pretrained(config / name))
    state = tiny_random.ldm_state_dict(components)
    model_type = infer_diffusers_model_type(state)
    assert single_file.FAMILIES[model_type][0] == family
    unet = convert_ldm_unet_checkpoint(state, dict(components["unet"].config))
    assert sorted(unet) == sorted(components["unet"].state_dict())
    vae = convert_ldm_vae_checkpoint(state, dict(components["vae"].config))
    assert sorted(vae) == sorted(components["vae"].state_dict())
    params = sum(p.numel() for p in components["unet"].parameters())
    assert params == {"sd15": 859_520_964, "sdxl": 2_567_463_684, "sdxl_refiner": 2_259_526_660}[family]


def test_incomplete_or_foreign_files_are_refused_clearly(tmp_path):
    from safetensors.torch import save_file

    state = tiny_random.ldm_state_dict(tiny_random.sd15_components())
    unet_only = {k: v.contiguous() for k, v in state.items() if k.startswith("model.diffusion_model.")}
    save_file(unet_only, str(tmp_path / "unet.safetensors"))
    with pytest.raises(InputError, match="without first_stage_model, cond_stage_model.transformer"):
        single_file.load(tmp_path / "unet.safetensors", "cpu", torch.float32)
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "lora.safetensors"))
    with pytest.raises(InputError, match="single files of SD1.5, SDXL base and SDXL refiner"):
        single_file.load(tmp_path / "lora.safetensors", "cpu", torch.float32)
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        single_file.load(tmp_path / "broken.safetensors", "cpu", torch.float32)


def test_pickle_checkpoints_are_refused_before_running(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "old.ckpt").write_bytes(b"\x80\x04pickle")
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    executor = Executor(Settings(models=tmp_path / "models", input=tmp_path / "input", output=tmp_path / "output",
                                 temp=tmp_path / "temp", device="cpu"))
    with pytest.raises(WorkflowInvalid) as err:
        executor.run(txt2img(ckpt="old.ckpt"))
    assert any(e.node_id == "ckpt" and "pickle" in e.message for e in err.value.errors)
