"""ConditioningAverage, ConditioningConcat and ConditioningZeroOut: the arithmetic they promise, and
graphs that use them run (a zeroed negative gives diffusers' image for zero negative embeddings)."""
from __future__ import annotations

import copy

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, txt2img

from latentgraph.graph.errors import InputError, NodeError, WorkflowInvalid
from latentgraph.nodes.conditioning import encode
from latentgraph.nodes.conditioning_ops import conditioning_average, conditioning_concat, conditioning_zero_out
from latentgraph.nodes.values import Conditioning

LONG = " ".join(["a large red circle on a blue"] * 12)  # two windows


@pytest.fixture
def clip(executor):
    executor.run(txt2img(steps=1))
    ((_, clip, _),) = executor.loaded_models()
    return clip


def test_average_blends_and_fits_the_length_of_conditioning_to(clip):
    red, blue, long = (encode(clip, t) for t in ("a red circle", "a blue square", LONG))
    (mixed,) = conditioning_average(None, red, blue, 0.3)
    torch.testing.assert_close(mixed.embeds, 0.3 * red.embeds + 0.7 * blue.embeds)
    (cut,) = conditioning_average(None, red, long, 0.0)
    assert torch.equal(cut.embeds, long.embeds[:, :77])
    (padded,) = conditioning_average(None, long, red, 0.0)
    assert torch.equal(padded.embeds[:, :77], red.embeds) and not padded.embeds[:, 77:].any()


def test_concat_joins_along_the_sequence(clip):
    red, blue = encode(clip, "a red circle"), encode(clip, "on a blue background")
    (joined,) = conditioning_concat(None, red, blue)
    assert joined.embeds.shape[1] == 2 * 77
    assert torch.equal(joined.embeds[:, :77], red.embeds) and torch.equal(joined.embeds[:, 77:], blue.embeds)


def test_different_widths_are_refused_naming_the_input(clip):
    red = encode(clip, "a red circle")
    wide = Conditioning(embeds=torch.zeros(1, 77, red.embeds.shape[-1] + 8))
    for op in (lambda: conditioning_average(None, red, wide, 0.5), lambda: conditioning_concat(None, red, wide)):
        with pytest.raises(InputError) as refused:
            op()
        assert refused.value.input_name == "conditioning_from"


def with_ops(strength=None, zero_negative=False) -> dict:
    """txt2img whose positive is ConditioningAverage(red, blue) and whose negative may be zeroed."""
    wf = txt2img(prompt="a large red circle", negative="green", seed=5)
    nodes = wf["nodes"]
    if strength is not None:
        nodes["blue"] = {"type": "CLIPTextEncode", "inputs": {"text": "a small blue square",
                                                              "clip": {"node": "ckpt", "output": "CLIP"}}}
        nodes["avg"] = {"type": "ConditioningAverage", "inputs": {
            "conditioning_to": {"node": "pos", "output": "CONDITIONING"},
            "conditioning_from": {"node": "blue", "output": "CONDITIONING"}, "conditioning_to_strength": strength}}
        nodes["sampler"]["inputs"]["positive"] = {"node": "avg", "output": "CONDITIONING"}
    if zero_negative:
        nodes["zero"] = {"type": "ConditioningZeroOut",
                         "inputs": {"conditioning": {"node": "neg", "output": "CONDITIONING"}}}
        nodes["sampler"]["inputs"]["negative"] = {"node": "zero", "output": "CONDITIONING"}
    return wf


def test_average_in_a_graph_at_strength_one_and_zero(executor):
    image = lambda wf: read_png(executor.run(wf).images[0]["path"])  # noqa: E731
    red, blue_wf = image(with_ops()), copy.deepcopy(with_ops())
    blue_wf["nodes"]["pos"]["inputs"]["text"] = "a small blue square"
    assert np.array_equal(image(with_ops(strength=1.0)), red)
    assert np.array_equal(image(with_ops(strength=0.0)), image(blue_wf))
    half = image(with_ops(strength=0.5))
    assert (half != red).any()


def test_zeroed_negative_equals_diffusers_with_zero_negative_embeddings(executor):
    ours = read_png(executor.run(with_ops(zero_negative=True)).images[0]["path"])
    ((model, clip, vae),) = executor.loaded_models()
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace")
    pipe = diffusers.StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                             unet=model.unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    zeros = torch.zeros(1, 77, clip.encoders[0].config.hidden_size)
    theirs = pipe("a large red circle", negative_prompt_embeds=zeros, num_inference_steps=6, guidance_scale=6.0,
                  height=64, width=64, generator=torch.Generator("cpu").manual_seed(5), output_type="np").images[0]
    assert ours.std() > 1
    assert np.array_equal(ours, (theirs * 255).round().astype("uint8"))
    zero = conditioning_zero_out(None, encode(clip, "green"))[0]
    assert not zero.embeds.any() and zero.embeds.shape == (1, 77, clip.encoders[0].config.hidden_size)


def test_comfyui_api_workflow_with_these_nodes_and_weights_runs_as_ours(executor):
    from latentgraph.graph.workflow import load_workflow

    api = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a large (red:1.2) circle", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "green", "clip": ["4", 1]}},
        "8": {"class_type": "CLIPTextEncode", "inputs": {"text": "a small blue square", "clip": ["4", 1]}},
        "9": {"class_type": "ConditioningAverage", "inputs": {
            "conditioning_to": ["6", 0], "conditioning_from": ["8", 0], "conditioning_to_strength": 0.5}},
        "10": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["7", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "positive": ["9", 0], "negative": ["10", 0], "latent_image": ["5", 0], "seed": 5,
            "steps": 6, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "api"}},
    }
    theirs = read_png(executor.run(load_workflow(api)).images[0]["path"])
    ours_wf = with_ops(strength=0.5, zero_negative=True)
    ours_wf["nodes"]["pos"]["inputs"]["text"] = "a large (red:1.2) circle"
    assert np.array_equal(theirs, read_png(executor.run(ours_wf).images[0]["path"]))


def combined(first: dict, second: dict) -> dict:
    """txt2img whose positive is ConditioningCombine of two prompts, each maybe limited to a range."""
    wf = txt2img(prompt=first["text"], negative="green", seed=5)
    nodes = wf["nodes"]
    nodes["two"] = {"type": "CLIPTextEncode", "inputs": {"text": second["text"],
                                                         "clip": {"node": "ckpt", "output": "CLIP"}}}
    sources = []
    for name, spec in (("pos", first), ("two", second)):
        source = {"node": name, "output": "CONDITIONING"}
        if "range" in spec:
            nodes[name + "_range"] = {"type": "ConditioningSetTimestepRange", "inputs": {
                "conditioning": source, "start": spec["range"][0], "end": spec["range"][1]}}
            source = {"node": name + "_range", "output": "CONDITIONING"}
        sources.append(source)
    nodes["both"] = {"type": "ConditioningCombine", "inputs": {"conditioning_1": sources[0],
                                                               "conditioning_2": sources[1]}}
    nodes["sampler"]["inputs"]["positive"] = {"node": "both", "output": "CONDITIONING"}
    return wf


def test_combine_averages_the_guided_predictions(executor, clip):
    from latentgraph.nodes.conditioning_ops import conditioning_combine
    from latentgraph.nodes.sampling import combined_predictor, guidance_batch

    ((model, _, _),) = executor.loaded_models()
    red, blue, neg = (encode(clip, t) for t in ("a red circle", "a blue square", "green"))
    (both,) = conditioning_combine(None, red, blue)
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config)
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[3]
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(1))

    def guided(positive):
        embeds, _, _ = guidance_batch(model, positive, neg, 6.0, 1, (64, 64), "cpu", torch.float32)
        with torch.no_grad():
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            uncond, cond = model.unet(model_input, t, encoder_hidden_states=embeds).sample.chunk(2)
        return uncond + 6.0 * (cond - uncond)
    predict = combined_predictor(model, both, neg, 6.0, 1, (64, 64), "cpu", torch.float32)
    with torch.no_grad():
        ours = predict(scheduler, latents, t)
    torch.testing.assert_close(ours, (guided(red) + guided(blue)) / 2, atol=1e-5, rtol=1e-4)
    assert combined_predictor(model, red, neg, 6.0, 1, (64, 64), "cpu", torch.float32) is None


def test_timestep_ranges_switch_prompts(executor):
    image = lambda wf: read_png(executor.run(wf).images[0]["path"])  # noqa: E731
    plain = image(with_ops())  # "a large red circle", negative "green", seed 5
    whole = combined({"text": "a large red circle", "range": (0.0, 1.0)},
                     {"text": "a large red circle", "range": (0.0, 1.0)})
    assert np.abs(image(whole).astype(int) - plain.astype(int)).max() <= 1  # the same prompt twice
    red_then_blue = image(combined({"text": "a large red circle", "range": (0.0, 0.5)},
                                   {"text": "a small blue square", "range": (0.5, 1.0)}))
    blue = image(combined({"text": "a small blue square"}, {"text": "a small blue square"}))
    assert (red_then_blue != plain).any() and (red_then_blue != blue).any()


def test_a_gap_in_the_ranges_is_refused_naming_positive(executor):
    wf = combined({"text": "a red circle", "range": (0.0, 0.3)}, {"text": "a blue square", "range": (0.6, 1.0)})
    with pytest.raises(NodeError) as refused:
        executor.run(wf)
    assert refused.value.error.node_id == "sampler" and refused.value.error.input == "positive"
    wf = combined({"text": "a red circle", "range": (0.6, 0.3)}, {"text": "a blue square"})
    with pytest.raises(WorkflowInvalid) as invalid:
        executor.run(wf)
    assert any(e.node_id == "pos_range" and e.input == "end" for e in invalid.value.errors)
