"""ControlNet: ControlNetLoader (diffusers folder, single files in the original and in diffusers' layout),
ControlNetApplyAdvanced equal, bit for bit, to diffusers' StableDiffusionControlNetPipeline (one and two
ControlNets, a step range) and StableDiffusionXLControlNetPipeline on the same modules; ControlNetApply
on the positive alone; refusals that name the node and the input."""
from __future__ import annotations

import json

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, txt2img
from PIL import Image
from safetensors.torch import save_file
from sdxl_helpers import loaded, pipeline, scheduler_for, sdxl_models_dir, sdxl_txt2img  # noqa: F401
from test_fidelity_sd15 import PAIRS, as_uint8

from latentgraph import tiny_random
from latentgraph.graph.comfyui import convert
from latentgraph.graph.errors import NodeError, WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.nodes import controlnet, single_file
from latentgraph.nodes.values import ControlNet


def make_settings(root, checkpoints_dir, name: str) -> Settings:
    models = root / "models"
    (models / "checkpoints").mkdir(parents=True, exist_ok=True)
    (models / "checkpoints" / name).symlink_to(checkpoints_dir / "checkpoints" / name)
    for folder in ("input", "output", "temp"):
        (root / folder).mkdir(exist_ok=True)
    return Settings(models=models, input=root / "input", output=root / "output", temp=root / "temp", device="cpu")


def control_picture(path, size: int, seed: int) -> Image.Image:
    """A blocky black-and-white picture, like an edge or segmentation map."""
    cells = np.random.default_rng(seed).integers(0, 2, (size // 8, size // 8), dtype=np.uint8) * 255
    picture = Image.fromarray(np.kron(cells, np.ones((8, 8), dtype=np.uint8))).convert("RGB")
    picture.save(path)
    return picture


@pytest.fixture
def cn_settings(models_dir, tmp_path):
    """The tiny SD1.5 checkpoint, two ControlNets made from its UNet in models/controlnet, two control images."""
    settings = make_settings(tmp_path, models_dir, "tiny-sd15")
    unet = tiny_random.sd15_components(seed=0)["unet"]
    for seed in (1, 2):  # the tiny VAE has 2 pixels per latent cell: two conditioning levels
        net = tiny_random.controlnet_from_unet(unet, seed=seed, conditioning_channels=(16, 32))
        net.save_pretrained(settings.models / "controlnet" / f"tiny-cn-{seed}", safe_serialization=True)
    (settings.models / "controlnet" / "old.pth").write_bytes(b"not loaded")
    for seed in (1, 2):
        control_picture(settings.input / f"hint-{seed}.png", 64, seed)
    return settings


def ref(node, output):
    return {"node": node, "output": output}


def with_control(wf: dict, name="tiny-cn-1", hint="hint-1.png", strength=0.8, start=0.0, end=1.0, tag="1",
                 advanced=True) -> dict:
    """The workflow with one more ControlNet on its sampler's prompts (after those already there)."""
    nodes, sampler = wf["nodes"], wf["nodes"]["sampler"]["inputs"]
    nodes[f"cn{tag}"] = {"type": "ControlNetLoader", "inputs": {"control_net_name": name}}
    nodes[f"hint{tag}"] = {"type": "LoadImage", "inputs": {"image": hint}}
    common = {"control_net": ref(f"cn{tag}", "CONTROL_NET"), "image": ref(f"hint{tag}", "IMAGE"), "strength": strength}
    if advanced:
        nodes[f"apply{tag}"] = {"type": "ControlNetApplyAdvanced", "inputs": {
            **common, "positive": sampler["positive"], "negative": sampler["negative"],
            "start_percent": start, "end_percent": end}}
        sampler.update(positive=ref(f"apply{tag}", "positive"), negative=ref(f"apply{tag}", "negative"))
    else:
        nodes[f"apply{tag}"] = {"type": "ControlNetApply", "inputs": {**common, "conditioning": sampler["positive"]}}
        sampler["positive"] = ref(f"apply{tag}", "CONDITIONING")
    return wf


def image_of(executor, wf) -> np.ndarray:
    return read_png(executor.run(wf).images[0]["path"])


def loaded_controlnets(executor) -> dict[str, ControlNet]:
    return {m[0].name: m[0] for m in executor.loaded_models() if isinstance(m[0], ControlNet)}


def control_pipeline(executor, nets, sampler):
    """diffusers' ControlNet pipeline made of the very modules the executor loaded."""
    model, clip, vae = loaded(executor, "sd15")
    class_name, flags = PAIRS[sampler]
    chosen = [loaded_controlnets(executor)[n].net for n in nets]
    return diffusers.StableDiffusionControlNetPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        controlnet=chosen[0] if len(chosen) == 1 else diffusers.MultiControlNetModel(chosen),
        scheduler=getattr(diffusers, class_name).from_config(model.scheduler_config, **flags),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


@pytest.mark.parametrize(("sampler", "start", "end"), [(("euler", "normal"), 0.0, 1.0),
                                                       (("dpmpp_2m", "karras"), 0.2, 0.7)],
                         ids=["euler", "dpmpp_2m-karras-range"])
def test_controlnet_apply_advanced_equals_stable_diffusion_controlnet_pipeline(cn_settings, sampler, start, end):
    executor = Executor(cn_settings)
    wf = with_control(txt2img(seed=4, steps=8, cfg=6.0, sampler_name=sampler[0], scheduler=sampler[1],
                              negative="blue"), start=start, end=end)
    ours = image_of(executor, wf)
    pipe = control_pipeline(executor, ["tiny-cn-1"], sampler)
    theirs = pipe("a red circle", image=Image.open(cn_settings.input / "hint-1.png"), negative_prompt="blue",
                  num_inference_steps=8, guidance_scale=6.0, height=64, width=64, controlnet_conditioning_scale=0.8,
                  control_guidance_start=start, control_guidance_end=end,
                  generator=torch.Generator("cpu").manual_seed(4), output_type="np").images
    plain = image_of(executor, txt2img(seed=4, steps=8, cfg=6.0, sampler_name=sampler[0], scheduler=sampler[1],
                                       negative="blue"))
    assert np.abs(ours.astype(int) - plain).mean() > 1  # the ControlNet does change the picture
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_two_controlnets_add_up_as_diffusers_multi_controlnet(cn_settings):
    executor = Executor(cn_settings)
    wf = with_control(txt2img(seed=7, steps=6), strength=0.6)
    wf = with_control(wf, name="tiny-cn-2", hint="hint-2.png", strength=1.2, tag="2")
    ours = image_of(executor, wf)
    pipe = control_pipeline(executor, ["tiny-cn-1", "tiny-cn-2"], ("euler", "normal"))
    theirs = pipe("a red circle", image=[Image.open(cn_settings.input / f"hint-{s}.png") for s in (1, 2)],
                  negative_prompt="", num_inference_steps=6, guidance_scale=6.0, height=64, width=64,
                  controlnet_conditioning_scale=[0.6, 1.2], generator=torch.Generator("cpu").manual_seed(7),
                  output_type="np").images
    one = image_of(executor, with_control(txt2img(seed=7, steps=6), strength=0.6))
    assert np.abs(ours.astype(int) - one).mean() > 2
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_controlnet_apply_steers_the_positive_prompt_only(cn_settings):
    executor = Executor(cn_settings)
    # Without guidance only the positive prompt runs: the same as the pipeline at guidance 1.
    ours = image_of(executor, with_control(txt2img(seed=2, steps=6, cfg=1.0), advanced=False))
    pipe = control_pipeline(executor, ["tiny-cn-1"], ("euler", "normal"))
    theirs = pipe("a red circle", image=Image.open(cn_settings.input / "hint-1.png"), num_inference_steps=6,
                  guidance_scale=1.0, height=64, width=64, controlnet_conditioning_scale=0.8,
                  generator=torch.Generator("cpu").manual_seed(2), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])
    # With guidance the negative half runs without it: unlike both the plain and the advanced picture.
    positive_only = image_of(executor, with_control(txt2img(seed=2, steps=6), advanced=False)).astype(int)
    both = image_of(executor, with_control(txt2img(seed=2, steps=6)))
    plain = image_of(executor, txt2img(seed=2, steps=6))
    assert np.abs(positive_only - both).mean() > 1 and np.abs(positive_only - plain).mean() > 1
    # Strength 0 leaves the conditioning as it was.
    assert np.array_equal(image_of(executor, with_control(txt2img(seed=2, steps=6), strength=0.0, advanced=False)),
                          plain)


def test_residuals_reach_only_the_rows_of_the_prompts_they_are_attached_to(cn_settings):
    """ControlNetApply on the positive: the negative rows of the UNet batch get no residuals."""
    executor = Executor(cn_settings)
    executor.run(with_control(txt2img(seed=2, steps=2), advanced=False))
    model, clip, _ = loaded(executor, "sd15")
    (net,) = loaded_controlnets(executor).values()
    from latentgraph.nodes.conditioning import encode
    from latentgraph.nodes.values import ControlHint

    hint_image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        positive = controlnet.controlnet_apply(None, encode(clip, "a red circle"), net, hint_image, 0.8)[0]
        negative = encode(clip, "")
        controls = controlnet.Controls(model, [negative, positive], 1, (64, 64), ["negative", "positive"])
        x = torch.randn(2, 4, 32, 32, generator=torch.Generator().manual_seed(1))
        embeds = torch.cat([negative.embeds, positive.embeds])
        residuals = controls.residuals(x, torch.tensor(500), embeds, None, 0, 1, [0, 1])
        alone = controlnet.Controls(model, [positive], 1, (64, 64), ["positive"]).residuals(
            x[1:], torch.tensor(500), positive.embeds, None, 0, 1, [0])
    assert isinstance(positive.control[0], ControlHint)
    for both_rows, positive_row in zip(residuals["down_block_additional_residuals"] +
                                       [residuals["mid_block_additional_residual"]],
                                       alone["down_block_additional_residuals"] +
                                       [alone["mid_block_additional_residual"]]):
        assert both_rows[0].abs().max() == 0 and positive_row.abs().max() > 0
        torch.testing.assert_close(both_rows[1:], positive_row, atol=1e-6, rtol=1e-5)


def test_single_files_load_as_the_diffusers_folder(models_dir, tmp_path, monkeypatch):
    """A ControlNet with the standard hint block (8 pixels per latent cell), written as a diffusers
    folder, as one file in the original layout and as one file in diffusers' layout: the three load
    the same weights. (The tiny checkpoints' VAEs have fewer pixels per cell, so the pictures of
    loaded ControlNets are checked with the folders above.)"""
    unet = tiny_random.sd15_components(seed=0)["unet"]
    net = tiny_random.controlnet_from_unet(unet, seed=3)
    settings = make_settings(tmp_path, models_dir, "tiny-sd15")
    root = settings.models / "controlnet"
    net.save_pretrained(root / "cn", safe_serialization=True)
    save_file(tiny_random.controlnet_to_ldm(net), str(root / "cn-original.safetensors"))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(root / "cn-diffusers.safetensors"))
    configs = tmp_path / "configs" / "sd15" / "unet"  # single files are read with the tiny UNet's config
    configs.mkdir(parents=True)
    (configs / "config.json").write_text((models_dir / "checkpoints/tiny-sd15/unet/config.json").read_text())
    monkeypatch.setattr(single_file, "CONFIGS", tmp_path / "configs")

    for name in ("cn", "cn-original.safetensors", "cn-diffusers.safetensors"):
        (loaded_net,) = controlnet.controlnet_loader(executor_context(settings), name)
        assert tuple(loaded_net.net.config.conditioning_embedding_out_channels) == (16, 32, 96, 256)
        weights = loaded_net.net.state_dict()
        assert weights.keys() == net.state_dict().keys()
        for key, value in net.state_dict().items():
            assert torch.equal(weights[key], value), (name, key)

    # A file of another shape (a two-level hint block where the config has four) is refused by name.
    small = tiny_random.controlnet_from_unet(unet, conditioning_channels=(16, 32))
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(root / "other.safetensors"))
    control_picture(settings.input / "hint-1.png", 64, 1)
    with pytest.raises(NodeError) as refused:
        Executor(settings).run(with_control(txt2img(seed=1, steps=2), name="other.safetensors"))
    assert refused.value.error.node_id == "cn1" and refused.value.error.input == "control_net_name"
    assert "diffusers folder" in refused.value.error.message


def executor_context(settings):
    from types import SimpleNamespace
    return SimpleNamespace(settings=settings, device="cpu", dtype=torch.float32)


def test_refusals_name_the_node_and_the_input(cn_settings):
    executor = Executor(cn_settings)
    with pytest.raises(WorkflowInvalid) as pickle:
        executor.run(with_control(txt2img(), name="old.pth"))
    with pytest.raises(WorkflowInvalid) as missing:
        executor.run(with_control(txt2img(), name="nowhere"))
    with pytest.raises(WorkflowInvalid) as reversed_range:
        executor.run(with_control(txt2img(), start=0.8, end=0.2))
    for refusal, node, name, words in ((pickle, "cn1", "control_net_name", "pickle"),
                                       (missing, "cn1", "control_net_name", "not found"),
                                       (reversed_range, "apply1", "end_percent", "before it starts")):
        (error,) = refusal.value.errors
        assert (error.node_id, error.input) == (node, name) and words in error.message
    # A ControlNet of another UNet (the tiny SD1.5's on the shipped tiny-shapes model) stops at the sampler.
    with pytest.raises(NodeError) as mismatch:
        executor.run(with_control(txt2img(ckpt="tiny-shapes", seed=1, steps=2)))
    assert mismatch.value.error.node_id == "sampler" and mismatch.value.error.input == "negative"
    assert "tiny-cn-1" in mismatch.value.error.message

    # A control image of another size is centre-cropped and resized to the picture's.
    wide = np.zeros((64, 128, 3), dtype=np.uint8)
    wide[:, 32:96] = np.array(Image.open(cn_settings.input / "hint-1.png"))
    Image.fromarray(wide).save(cn_settings.input / "wide.png")
    assert np.array_equal(image_of(executor, with_control(txt2img(seed=1, steps=2), hint="wide.png")),
                          image_of(executor, with_control(txt2img(seed=1, steps=2))))


def test_a_comfyui_controlnet_workflow_runs_as_ours(cn_settings):
    executor = Executor(cn_settings)
    ours = image_of(executor, with_control(txt2img(seed=5, steps=4), start=0.1, end=0.9))
    api = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "tiny-cn-1"}},
        "5": {"class_type": "LoadImage", "inputs": {"image": "hint-1.png"}},
        "6": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0], "image": ["5", 0], "vae": ["1", 2],
            "strength": 0.8, "start_percent": 0.1, "end_percent": 0.9}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["7", 0], "seed": 5,
            "steps": 4, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "comfy"}},
    }
    assert np.array_equal(image_of(executor, convert(json.loads(json.dumps(api)), "comfyui-api")), ours)


def test_sdxl_controlnet_equals_stable_diffusion_xl_controlnet_pipeline(sdxl_models_dir, tmp_path):  # noqa: F811
    settings = make_settings(tmp_path, sdxl_models_dir, "tiny-sdxl")
    unet = diffusers.UNet2DConditionModel.from_pretrained(sdxl_models_dir / "checkpoints" / "tiny-sdxl",
                                                          subfolder="unet")
    tiny_random.controlnet_from_unet(unet, seed=4, conditioning_channels=(16, 32)).save_pretrained(
        settings.models / "controlnet" / "tiny-xl-cn", safe_serialization=True)
    hint = control_picture(settings.input / "hint-1.png", 32, 5)
    executor = Executor(settings)
    wf = with_control(sdxl_txt2img(seed=4, steps=6), name="tiny-xl-cn", strength=0.9)
    ours = image_of(executor, wf)
    base = pipeline(executor, diffusers.StableDiffusionXLPipeline, "sdxl",
                    scheduler_for(executor, "sdxl", "EulerDiscreteScheduler", timestep_spacing="linspace"))
    pipe = diffusers.StableDiffusionXLControlNetPipeline(**base.components,
                                                         controlnet=loaded_controlnets(executor)["tiny-xl-cn"].net)
    theirs = pipe("a large red circle", image=hint, num_inference_steps=6, guidance_scale=6.5, height=32, width=32,
                  controlnet_conditioning_scale=0.9, generator=torch.Generator("cpu").manual_seed(4),
                  output_type="np").images
    plain = image_of(executor, sdxl_txt2img(seed=4, steps=6))
    assert np.abs(ours.astype(int) - plain).mean() > 2
    assert np.array_equal(ours, as_uint8(theirs)[0])
    assert loaded(executor, "sdxl")[0].family == "sdxl"
