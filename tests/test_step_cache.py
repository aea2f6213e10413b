"""Step caching nodes (DeepCache, ApplyFBCacheOnModel): off, they leave the image bit for bit as
the plain graph's; on, DeepCache equals the DeepCache authors' own helper on diffusers' pipeline,
and the first-block cache a direct computation of the technique from the UNet's own parts; the
shared UNet is as it was after every run."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from DeepCache import DeepCacheSDHelper
from helpers import read_png, txt2img

PROMPT, NEGATIVE, SEED, STEPS, CFG = "a large red circle on a blue background", "green", 3, 8, 6.5


def plain() -> dict:
    return txt2img(prompt=PROMPT, negative=NEGATIVE, seed=SEED, steps=STEPS, cfg=CFG)


def with_node(node_type: str, **inputs) -> dict:
    workflow = plain()
    nodes = workflow["nodes"]
    nodes["cache"] = {"type": node_type, "inputs": {"model": {"node": "ckpt", "output": "MODEL"}, **inputs}}
    nodes["sampler"]["inputs"]["model"] = {"node": "cache", "output": "MODEL"}
    return workflow


def deep_cache(interval: int, depth: int, start_step: int = 0, end_step: int = 1000) -> dict:
    return with_node("DeepCache", cache_interval=interval, cache_depth=depth, start_step=start_step, end_step=end_step)


def fbcache(threshold: float, max_hits: int = -1) -> dict:
    return with_node("ApplyFBCacheOnModel", object_to_patch="diffusion_model", residual_diff_threshold=threshold,
                     start=0.0, end=1.0, max_consecutive_cache_hits=max_hits)


def image(executor, workflow) -> np.ndarray:
    return read_png(executor.run(workflow).images[0]["path"])


def unet_of(executor):
    ((model, _, _),) = executor.loaded_models()
    return model.unet


def patched_modules(unet) -> list[str]:
    """Submodules with a forward of their own instance (a step cache leaves none behind)."""
    return [name for name, m in unet.named_modules() if "forward" in vars(m)]


class DeepCalls:
    """Counts the calls that ran the UNet's middle block (skipped calls do not)."""

    def __init__(self, unet):
        self.count = 0
        self.handle = unet.mid_block.resnets[0].register_forward_hook(self.seen)

    def seen(self, *_):
        self.count += 1


def pipeline(executor):
    ((model, clip, vae),) = executor.loaded_models()
    scheduler = diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace")
    pipe = diffusers.StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                             unet=model.unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_image(pipe) -> np.ndarray:
    out = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=CFG, height=64, width=64,
               generator=torch.Generator("cpu").manual_seed(SEED), output_type="np").images[0]
    return (out * 255).round().astype("uint8")


def test_caches_switched_off_give_the_plain_image_bit_for_bit(executor):
    reference = image(executor, plain())
    unet = unet_of(executor)
    calls = DeepCalls(unet)
    assert np.array_equal(image(executor, deep_cache(interval=1, depth=0)), reference)
    assert np.array_equal(image(executor, fbcache(threshold=0.0)), reference)
    assert calls.count == 2 * STEPS  # every call ran the whole UNet, through the installed hooks
    assert patched_modules(unet) == []


@pytest.mark.parametrize("interval, depth", [(3, 0), (2, 4)])
def test_deepcache_equals_the_deepcache_authors_helper(executor, interval, depth):
    ours = image(executor, deep_cache(interval, depth))
    unet = unet_of(executor)
    assert patched_modules(unet) == []
    pipe = pipeline(executor)
    helper = DeepCacheSDHelper(pipe=pipe)
    helper.set_params(cache_interval=interval, cache_branch_id=depth)  # tiny-sd15: 2 layers a block, as SD1.5
    helper.enable()
    try:
        theirs = pipeline_image(pipe)
    finally:
        helper.disable()
    assert ours.std() > 1 and np.array_equal(ours, theirs)
    assert not np.array_equal(ours, image(executor, plain()))  # the cache did change the computation


def test_deepcache_reuses_between_full_steps_inside_its_window_only(executor):
    image(executor, plain())
    calls = DeepCalls(unet_of(executor))
    image(executor, deep_cache(interval=3, depth=2))
    assert calls.count == len(range(0, STEPS, 3))  # steps 0, 3, 6
    calls.count = 0
    # tiny-sd15's 8 linspace timesteps: 999, 856, 713, 571, 428, 285, 142, 0; cache below t 600 only.
    image(executor, deep_cache(interval=3, depth=2, start_step=400))
    assert calls.count == 3 + 2  # 999, 856, 713 before the window, then 571 and 142 (every third inside)


def fbcache_reference(unet, threshold: float):
    """The first-block cache computed directly from the UNet's parts: a UNet forward for the pipeline
    that runs the first layer, compares its residual with the one of the last full call, and either
    runs the whole UNet (remembering the residual the rest added before conv_norm_out) or adds that
    residual to the first layer's output and applies the UNet's output layers."""
    full_forward = unet.forward
    first = unet.down_blocks[0]
    state = {"first": None, "tail": None, "skipped": 0}

    def forward(sample, timestep, encoder_hidden_states, **kwargs):
        emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
        entry = unet.conv_in(sample)
        first_out = first.resnets[0](entry, emb)
        if getattr(first, "attentions", None):
            first_out = first.attentions[0](first_out, encoder_hidden_states=encoder_hidden_states,
                                            return_dict=False)[0]
        residual = first_out - entry
        if state["first"] is not None:
            change = ((residual - state["first"]).abs().mean() / state["first"].abs().mean()).item()
            if change < threshold:
                state["skipped"] += 1
                h = unet.conv_act(unet.conv_norm_out(first_out + state["tail"]))
                return (unet.conv_out(h),)
        seen = {}
        handle = unet.up_blocks[-1].register_forward_hook(lambda m, a, out: seen.update(out=out))
        try:
            out = full_forward(sample, timestep, encoder_hidden_states=encoder_hidden_states, **kwargs)
        finally:
            handle.remove()
        state["first"], state["tail"] = residual, seen["out"] - first_out
        return out
    return forward, state


def test_first_block_cache_equals_a_direct_computation_of_it(executor):
    threshold = 0.25
    image(executor, plain())
    unet = unet_of(executor)
    calls = DeepCalls(unet)
    ours = image(executor, fbcache(threshold))
    calls.handle.remove()
    skipped = STEPS - calls.count
    assert 0 < skipped < STEPS - 1  # some calls reused, not all: the threshold matters here
    assert patched_modules(unet) == []

    pipe = pipeline(executor)
    forward, state = fbcache_reference(unet, threshold)
    unet.forward = forward
    try:
        theirs = pipeline_image(pipe)
    finally:
        del unet.forward
    assert state["skipped"] == skipped
    assert ours.std() > 1 and np.array_equal(ours, theirs)


def test_first_block_cache_limits_consecutive_reuses(executor):
    image(executor, plain())
    unet = unet_of(executor)
    calls = DeepCalls(unet)
    image(executor, fbcache(threshold=1.0, max_hits=1))  # would reuse every call but the first
    assert calls.count == len(range(0, STEPS, 2))  # full, reused, full, reused...


def test_the_shared_unet_serves_plain_graphs_unchanged_after_a_cached_one(executor):
    before = image(executor, plain())
    image(executor, deep_cache(interval=2, depth=0))
    image(executor, fbcache(threshold=0.5))
    executor.cache.results.clear()
    after = image(executor, plain())
    assert np.array_equal(before, after) and patched_modules(unet_of(executor)) == []


def test_bad_settings_name_the_node_and_input(executor):
    from latentgraph.graph.errors import NodeError

    with pytest.raises(NodeError) as too_deep:
        executor.run(deep_cache(interval=2, depth=6))  # tiny-sd15 has 6 skip connections: 0-5
    assert too_deep.value.error.node_id == "cache" and too_deep.value.error.input == "cache_depth"
    assert "0 to 5" in too_deep.value.error.message
    twice = deep_cache(interval=2, depth=1)
    twice["nodes"]["cache2"] = {"type": "ApplyFBCacheOnModel", "inputs": {
        "model": {"node": "cache", "output": "MODEL"}, "residual_diff_threshold": 0.1}}
    twice["nodes"]["sampler"]["inputs"]["model"] = {"node": "cache2", "output": "MODEL"}
    with pytest.raises(NodeError) as stacked:
        executor.run(twice)
    assert stacked.value.error.node_id == "cache2" and stacked.value.error.input == "model"
    errors = executor.validate(with_node("ApplyFBCacheOnModel", object_to_patch="text_encoder"))
    assert [(e.node_id, e.input) for e in errors] == [("cache", "object_to_patch")]
    assert patched_modules(unet_of(executor)) == []
