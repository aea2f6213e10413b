"""Step caching model patches, with the names and inputs of the ComfyUI nodes users know:
DeepCache (the DeepCache custom node) and ApplyFBCacheOnModel (WaveSpeed's first-block cache).

Like FreeU, a node only marks the MODEL value; the sampler switches the cache on in the shared
UNet for its own loop (nodes/unet_reuse.py) and off after it. Quality and speed-ups measured on
the shipped model and an SD1.5-size one: docs/benchmarks.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from latentgraph.graph.errors import InputError
from latentgraph.nodes.spec import FLOAT, INT, MODEL, STRING, Input, Output, node, start_before_end


@dataclass(frozen=True)
class DeepCache:
    interval: int
    depth: int
    start_step: int
    end_step: int

    def session(self, unet):
        from latentgraph.nodes.unet_reuse import DeepCacheSession
        return DeepCacheSession(unet, self.interval, self.depth, self.start_step, self.end_step)


@dataclass(frozen=True)
class FirstBlockCache:
    threshold: float
    start: float
    end: float
    max_hits: int

    def session(self, unet):
        from latentgraph.nodes.unet_reuse import FirstBlockSession
        return FirstBlockSession(unet, self.threshold, self.start, self.end, self.max_hits)


def with_cache(model, cache):
    if model.step_cache is not None:
        raise InputError("model", f"this model already has a step cache ({type(model.step_cache).__name__}): "
                                  "use one step-cache node per model")
    return (dataclasses.replace(model, step_cache=cache),)


@node("DeepCache", category="model_patches",
      description="DeepCache: the UNet's deep features are computed every cache_interval steps and reused in "
                  "between, while the layers above the cache_depth skip branch run every step. Faster at a small "
                  "cost in detail (see docs/benchmarks.md for measured speed and quality).",
      inputs=[Input("model", MODEL),
              Input("cache_interval", INT, default=5, min=1, max=1000,
                    tooltip="Steps between two full UNet passes; 1 turns caching off."),
              Input("cache_depth", INT, default=3, min=0, max=11,
                    tooltip="The skip branch above which the UNet runs every step (0: only its first and last "
                            "layers; SD1.5 has branches 0-11, SDXL 0-8). Deeper is slower and closer to the "
                            "uncached image."),
              Input("start_step", INT, default=0, min=0, max=1000,
                    tooltip="Caching starts once the timestep is 1000 - start_step or lower (0: from the start)."),
              Input("end_step", INT, default=1000, min=0, max=1000,
                    tooltip="Caching stops below timestep 1000 - end_step (1000: to the end).")],
      outputs=[Output("MODEL", MODEL)],
      check=start_before_end("start_step", "end_step"))
def deep_cache(ctx, model, cache_interval: int, cache_depth: int, start_step: int, end_step: int):
    from latentgraph.nodes.unet_reuse import skip_count

    branches = skip_count(model.unet)
    if cache_depth >= branches:
        raise InputError("cache_depth", f"this model's UNet has {branches} skip connections: cache_depth is 0 to "
                                        f"{branches - 1}")
    return with_cache(model, DeepCache(cache_interval, cache_depth, start_step, end_step))


def _check_fbcache(values: dict) -> list[tuple[str, str]]:
    problems = start_before_end()(values)
    if values.get("object_to_patch", "diffusion_model") != "diffusion_model":
        problems.append(("object_to_patch", "only 'diffusion_model' (the UNet) can be patched"))
    return problems


@node("ApplyFBCacheOnModel", category="model_patches",
      description="First-block cache (WaveSpeed's node): each UNet call runs its first layer; where that layer's "
                  "residual changed by less than residual_diff_threshold since the last full call, the rest of the "
                  "UNet is skipped and its residual from that call reused.",
      inputs=[Input("model", MODEL),
              Input("object_to_patch", STRING, default="diffusion_model",
                    tooltip="What to patch: the diffusion model (the only choice here)."),
              Input("residual_diff_threshold", FLOAT, default=0.0, min=0.0, max=1.0, step=0.001,
                    tooltip="Relative change of the first layer's residual under which the rest is reused; "
                            "0 never reuses. Higher is faster and further from the uncached image."),
              Input("start", FLOAT, default=0.0, min=0.0, max=1.0, step=0.01,
                    tooltip="Fraction of sampling (by timestep) before which nothing is reused."),
              Input("end", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
                    tooltip="Fraction of sampling after which nothing is reused."),
              Input("max_consecutive_cache_hits", INT, default=-1, min=-1, max=1000,
                    tooltip="Reuses in a row before a full call is forced; -1: no limit, 0: never reuse.")],
      outputs=[Output("MODEL", MODEL)],
      check=_check_fbcache)
def apply_fbcache_on_model(ctx, model, object_to_patch: str, residual_diff_threshold: float, start: float,
                           end: float, max_consecutive_cache_hits: int):
    return with_cache(model, FirstBlockCache(residual_diff_threshold, start, end, max_consecutive_cache_hits))
