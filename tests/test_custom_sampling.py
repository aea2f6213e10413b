"""Custom sampling (SamplerCustom, SamplerCustomAdvanced and their parts): the same picture as diffusers'
pipeline and as KSampler for the same settings, a split schedule continued without noise equals the
unsplit one, and a sampler that cannot use the grid is refused naming the node and the input."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, to_img2img, txt2img
from PIL import Image

from latentgraph.graph.errors import NodeError
from latentgraph.graph.workflow import load_workflow


def ref(node: str, output: str) -> dict:
    return {"node": node, "output": output}


def custom(workflow: dict, advanced: bool = False, split: int | None = None, denoise: float = 1.0,
           guider: str = "CFGGuider") -> dict:
    """The workflow with its KSampler replaced by KSamplerSelect + BasicScheduler + SamplerCustom (or
    RandomNoise + a guider + SamplerCustomAdvanced); `split`: two samplers, the second going on
    without noise from step `split`."""
    nodes = workflow["nodes"]
    k = nodes.pop("sampler")["inputs"]
    nodes["select"] = {"type": "KSamplerSelect", "inputs": {"sampler_name": k["sampler_name"]}}
    nodes["sigmas"] = {"type": "BasicScheduler", "inputs": {"model": k["model"], "scheduler": k["scheduler"],
                                                            "steps": k["steps"], "denoise": denoise}}
    parts = [("sampler", ref("sigmas", "SIGMAS"), True)]
    if split is not None:
        nodes["split"] = {"type": "SplitSigmas", "inputs": {"sigmas": ref("sigmas", "SIGMAS"), "step": split}}
        parts = [("first", ref("split", "high_sigmas"), True), ("sampler", ref("split", "low_sigmas"), False)]
    latent = k["latent_image"]
    for name, sigmas, noise in parts:
        common = {"sampler": ref("select", "SAMPLER"), "sigmas": sigmas, "latent_image": latent}
        if advanced:
            nodes[name + "_noise"] = ({"type": "RandomNoise", "inputs": {"noise_seed": k["seed"]}} if noise
                                      else {"type": "DisableNoise", "inputs": {}})
            nodes[name + "_guider"] = (
                {"type": "CFGGuider", "inputs": {"model": k["model"], "positive": k["positive"],
                                                 "negative": k["negative"], "cfg": k["cfg"]}}
                if guider == "CFGGuider" else
                {"type": "BasicGuider", "inputs": {"model": k["model"], "conditioning": k["positive"]}})
            nodes[name] = {"type": "SamplerCustomAdvanced", "inputs": {
                "noise": ref(name + "_noise", "NOISE"), "guider": ref(name + "_guider", "GUIDER"), **common}}
        else:
            nodes[name] = {"type": "SamplerCustom", "inputs": {
                "model": k["model"], "add_noise": noise, "noise_seed": k["seed"], "cfg": k["cfg"],
                "positive": k["positive"], "negative": k["negative"], **common}}
        latent = ref(name, "output")
    nodes["decode"]["inputs"]["samples"] = ref("sampler", "output")
    return workflow


def picture(executor, workflow: dict) -> np.ndarray:
    return read_png(executor.run(workflow).images[0]["path"])


PROMPT = "a large red circle on a blue background"


def test_sampler_custom_equals_the_diffusers_pipeline(executor):
    ours = picture(executor, custom(txt2img(prompt=PROMPT, seed=4, steps=6)))
    ((model, clip, vae),) = executor.loaded_models()
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        scheduler=diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(PROMPT, negative_prompt="", num_inference_steps=6, guidance_scale=6.0,
                  generator=torch.Generator().manual_seed(4), output_type="np").images
    assert ours.std() > 1 and np.array_equal(ours, (theirs[0] * 255).round().astype("uint8"))


@pytest.mark.parametrize("sampler_name, scheduler", [("dpmpp_2m", "karras"), ("euler_ancestral", "normal")])
def test_both_custom_samplers_equal_ksampler(executor, sampler_name, scheduler):
    settings = dict(prompt=PROMPT, seed=7, steps=5, sampler_name=sampler_name, scheduler=scheduler)
    plain = picture(executor, txt2img(**settings))
    assert np.array_equal(picture(executor, custom(txt2img(**settings))), plain)
    assert np.array_equal(picture(executor, custom(txt2img(**settings), advanced=True)), plain)
    other_seed = picture(executor, custom(txt2img(**{**settings, "seed": 8}), advanced=True))
    assert not np.array_equal(other_seed, plain)


@pytest.mark.parametrize("advanced", [False, True])
def test_a_split_schedule_continued_without_noise_equals_the_whole(executor, advanced):
    whole = picture(executor, custom(txt2img(prompt=PROMPT, seed=2, steps=6)))
    split = custom(txt2img(prompt=PROMPT, seed=2, steps=6), advanced=advanced, split=2)
    assert np.array_equal(picture(executor, split), whole)
    # The first part stops with leftover noise; its denoised_output is that step's clean estimate.
    split["nodes"]["decode"]["inputs"]["samples"] = ref("first", "output")
    noisy = picture(executor, split)
    split["nodes"]["decode"]["inputs"]["samples"] = ref("first", "denoised_output")
    estimate = picture(executor, split)
    assert not np.array_equal(noisy, estimate) and not np.array_equal(estimate, whole)
    # Continuing it with fresh noise instead is another picture.
    if not advanced:
        split["nodes"]["sampler"]["inputs"]["add_noise"] = True
        split["nodes"]["decode"]["inputs"]["samples"] = ref("sampler", "output")
        assert not np.array_equal(picture(executor, split), whole)


def test_basic_scheduler_denoise_is_ksamplers_img2img(executor, settings):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        settings.input / "noise.png")
    plain = picture(executor, to_img2img(txt2img(prompt=PROMPT, seed=3, steps=8), "noise.png", 0.5))
    ours = picture(executor, custom(to_img2img(txt2img(prompt=PROMPT, seed=3, steps=8), "noise.png", 1.0),
                                    denoise=0.5))
    assert np.array_equal(ours, plain)


def test_basic_guider_is_cfg_one(executor):
    plain = picture(executor, txt2img(prompt=PROMPT, seed=5, steps=4, cfg=1.0))
    assert np.array_equal(picture(executor, custom(txt2img(prompt=PROMPT, seed=5, steps=4), advanced=True,
                                                   guider="BasicGuider")), plain)


def test_a_sampler_that_cannot_use_the_grid_is_refused(executor):
    workflow = custom(txt2img(prompt=PROMPT, steps=4, sampler_name="ddim", scheduler="karras"))
    with pytest.raises(NodeError) as refused:
        executor.run(workflow)
    assert (refused.value.error.node_id, refused.value.error.input) == ("sampler", "sigmas")
    assert "karras" in refused.value.error.message


def ui_node(node_id: int, node_type: str, widgets: list, inputs: dict[str, int] | None = None) -> dict:
    """A node as ComfyUI's editor saves it: positional widget values, inputs by link id."""
    return {"id": node_id, "type": node_type, "mode": 0, "widgets_values": widgets,
            "inputs": [{"name": name, "type": "*", "link": link} for name, link in (inputs or {}).items()]}


def test_a_comfyui_custom_sampling_workflow_runs_as_saved(executor):
    """ComfyUI's editor format, as its custom sampling template wires it (the seed followed by its
    control value): the picture of our KSampler for the same settings."""
    links = [(1, 1, 1, 2), (2, 1, 1, 3), (3, 1, 0, 6), (4, 2, 0, 6), (5, 3, 0, 6), (6, 1, 0, 8), (7, 5, 0, 9),
             (8, 6, 0, 9), (9, 7, 0, 9), (10, 8, 0, 9), (11, 4, 0, 9), (12, 9, 0, 10), (13, 1, 2, 10), (14, 10, 0, 11)]
    doc = {"last_node_id": 11, "last_link_id": 14, "version": 0.4,
           "links": [[i, src, slot, dst, 0, "*"] for i, src, slot, dst in links],
           "nodes": [ui_node(1, "CheckpointLoaderSimple", ["tiny-sd15"]),
                     ui_node(2, "CLIPTextEncode", [PROMPT], {"clip": 1}),
                     ui_node(3, "CLIPTextEncode", [""], {"clip": 2}),
                     ui_node(4, "EmptyLatentImage", [64, 64, 1]),
                     ui_node(5, "RandomNoise", [4, "fixed"]),
                     ui_node(6, "CFGGuider", [6.0], {"model": 3, "positive": 4, "negative": 5}),
                     ui_node(7, "KSamplerSelect", ["dpmpp_2m"]),
                     ui_node(8, "BasicScheduler", ["karras", 6, 1.0], {"model": 6}),
                     ui_node(9, "SamplerCustomAdvanced", [], {"noise": 7, "guider": 8, "sampler": 9, "sigmas": 10,
                                                             "latent_image": 11}),
                     ui_node(10, "VAEDecode", [], {"samples": 12, "vae": 13}),
                     ui_node(11, "SaveImage", ["test"], {"images": 14})]}
    ours = picture(executor, load_workflow(doc))
    plain = picture(executor, txt2img(prompt=PROMPT, seed=4, steps=6, sampler_name="dpmpp_2m", scheduler="karras"))
    assert ours.std() > 1 and np.array_equal(ours, plain)


@pytest.mark.parametrize("node_type, grid", [("KarrasScheduler", "karras"), ("ExponentialScheduler", "exponential")])
def test_hand_set_schedulers_at_the_models_own_ends_are_its_grids(executor, node_type, grid):
    """ComfyUI's defaults (14.614642, 0.0291675) are SD's own ends: the same picture as BasicScheduler's grid;
    other ends are refused naming the sampler node's `sigmas`."""
    settings = dict(prompt=PROMPT, seed=6, steps=5, sampler_name="dpmpp_2m", scheduler=grid)
    basic = picture(executor, custom(txt2img(**settings)))
    workflow = custom(txt2img(**settings))
    extra = {"rho": 7.0} if node_type == "KarrasScheduler" else {}
    workflow["nodes"]["sigmas"] = {"type": node_type, "inputs": {"steps": 5, "sigma_max": 14.614642,
                                                                 "sigma_min": 0.0291675, **extra}}
    assert np.array_equal(picture(executor, workflow), basic)
    workflow["nodes"]["sigmas"]["inputs"]["sigma_min"] = 0.1
    with pytest.raises(NodeError) as refused:
        executor.run(workflow)
    assert (refused.value.error.node_id, refused.value.error.input) == ("sampler", "sigmas")
    assert "0.0291675" in refused.value.error.message
