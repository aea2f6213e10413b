"""Step caching in a diffusers UNet: parts of one step's computation reused at the next steps.

Both techniques skip a contiguous stretch of the UNet (its "region": the deep down layers, the
middle block, the up layers that consume their skip connections) and hand the next computed layer
what that stretch gave at the last fully computed call:

- DeepCache (Ma et al. 2023): the shallow layers above a skip branch run every step; the rest runs
  every `cache_interval` steps and its output is reused in between.
- First-block cache (ParaAttention's FBCache, WaveSpeed's ApplyFBCacheOnModel): the first layer
  runs every call; where its residual changed by less than a threshold since the last full call,
  the rest of the network is skipped and its residual from that call added instead.

diffusers' own caches (`diffusers.hooks`: apply_first_block_cache, FasterCache, ...) attach to the
transformer-block lists of DiT models (`CacheMixin.enable_cache`); UNet2DConditionModel has neither
(in diffusers 0.42), so the techniques are applied here, the way the DeepCache authors' helper
does it for diffusers' UNets. The UNet is not forked: while a sampler runs, the forward of the
region's modules is replaced by one that either calls the original and records what it returned,
or returns the record. The forwards are put back when sampling ends (`installed`), so a UNet
shared with other graphs is untouched outside that sampler's loop. A block wholly inside the
region is skipped as one module.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import torch

from latentgraph.graph.errors import InputError

log = logging.getLogger("latentgraph")


def layers(block) -> list[list]:
    """A UNet block's layers in call order: [resnet, attention] (or [resnet]) each, then a sampler."""
    attentions = list(getattr(block, "attentions", None) or [None] * len(block.resnets))
    found = [[m for m in (resnet, attention) if m is not None] for resnet, attention in zip(block.resnets, attentions)]
    samplers = list(getattr(block, "downsamplers", None) or []) + list(getattr(block, "upsamplers", None) or [])
    return found + [[sampler] for sampler in samplers]


def skip_count(unet) -> int:
    """Skip connections of a UNet: conv_in's output, then one per down layer and downsampler."""
    return 1 + sum(len(layers(block)) for block in unet.down_blocks)


def deep_region(unet, depth: int) -> list:
    """The modules DeepCache skips with branch `depth` (ComfyUI's DeepCache cache_depth, DeepCache's
    cache_branch_id): down layers making skips past `depth`, the middle block, and the up layers
    consuming those skips (with the upsampler after them), in call order."""
    total = skip_count(unet)
    if not 0 <= depth < total:
        raise InputError("cache_depth", f"this UNet has {total} skip connections: cache_depth is 0 to {total - 1}")
    region, skip = [], 0
    for block in unet.down_blocks:
        made = []
        for layer in layers(block):
            skip += 1
            made.append((skip, layer))
        if all(s > depth for s, _ in made):
            region.append(block)
        else:
            region += [m for s, layer in made if s > depth for m in layer]
    if unet.mid_block is not None:
        region.append(unet.mid_block)
    for block in unet.up_blocks:  # each up layer consumes the last skip not yet consumed
        consumed = []
        for layer in layers(block)[:len(block.resnets)]:
            consumed.append((skip, layer))
            skip -= 1
        region += _up_part(block, consumed, depth)
    return region


def _up_part(block, consumed: list[tuple[int, list]], depth: int) -> list:
    if consumed[-1][0] > depth:  # even its last layer is deep: the whole block, upsampler included
        return [block]
    return [m for s, layer in consumed if s > depth for m in layer]


def tail_region(unet) -> tuple[Any, list]:
    """(the module ending the first layer, the modules after it up to the end of the up path): the
    first-block cache's split."""
    first, *rest = layers(unet.down_blocks[0])
    region = [m for layer in rest for m in layer] + list(unet.down_blocks[1:])
    if unet.mid_block is not None:
        region.append(unet.mid_block)
    return first[-1], region + list(unet.up_blocks)


def hidden(output) -> torch.Tensor:
    """The hidden states in what a UNet part returned (attention blocks return a 1-tuple)."""
    return output[0] if isinstance(output, tuple) else output


def _clone(output):
    return tuple(_clone(o) for o in output) if isinstance(output, tuple) else output.clone()


@contextlib.contextmanager
def patched(patches: list[tuple[Any, Callable]]):
    """Each module's forward replaced by `make(original forward)` for the duration; afterwards every
    module is as it was (an instance `forward` set before, e.g. by a profiler, is put back)."""
    saved = []
    try:
        for module, make in patches:
            saved.append((module, vars(module).get("forward")))
            module.forward = make(module.forward)
        yield
    finally:
        for module, previous in reversed(saved):
            if previous is None:
                del module.forward
            else:
                module.forward = previous


class Session:
    """One sampler loop's step cache. `begin_step` is told each step; each UNet call in a step gets
    its own slot (the regional sampler calls the UNet once per area), with its own records."""

    name = "step cache"

    def __init__(self, unet, region: list):
        self.unet, self.region = unet, region
        self.records: dict[int, dict[int, Any]] = {}  # slot -> id(module) -> its output at the last full call
        self.shapes: dict[int, tuple] = {}  # slot -> the input shape those records are for
        self.slot, self.t, self.skipping = -1, 0.0, False
        self.calls = self.skipped = 0

    def begin_step(self, step: int, t: float) -> None:
        self.slot, self.t = -1, t

    def begin_call(self, sample: torch.Tensor) -> None:
        self.slot += 1
        self.calls += 1
        self.skipping = False
        if self.shapes.get(self.slot) != tuple(sample.shape):  # a new call or another size: compute it all
            self.records.pop(self.slot, None)
            self.shapes[self.slot] = tuple(sample.shape)

    def can_skip(self) -> bool:
        return self.slot in self.records and len(self.records[self.slot]) == len(self.region)

    def region_output(self, module, original, args, kwargs):
        records = self.records.setdefault(self.slot, {})
        if self.skipping:
            return self.reused(module, records[id(module)])
        output = original(*args, **kwargs)
        records[id(module)] = self.recorded(module, output)
        return output

    def reused(self, module, record):
        return record

    def recorded(self, module, output):
        return output

    def patches(self) -> list[tuple[Any, Callable]]:
        def conv_in(original):
            def forward(sample, *args, **kwargs):
                self.begin_call(sample)
                return original(sample, *args, **kwargs)
            return forward

        def region(module):
            def make(original):
                return lambda *args, **kwargs: self.region_output(module, original, args, kwargs)
            return make
        return [(self.unet.conv_in, conv_in)] + [(m, region(m)) for m in self.region]

    @contextlib.contextmanager
    def installed(self):
        with patched(self.patches()):
            yield self
        if self.calls:
            log.info("%s: the UNet's deep part reused at %d of %d calls", self.name, self.skipped, self.calls)


class DeepCacheSession(Session):
    """DeepCache: every `interval` steps (counted from the first step inside the window) a full call,
    whose region outputs are reused by the calls in between. The window: UNet timesteps t with
    1000 - end_step <= t <= 1000 - start_step (ComfyUI's DeepCache node)."""

    name = "DeepCache"

    def __init__(self, unet, interval: int, depth: int, start_step: int, end_step: int):
        super().__init__(unet, deep_region(unet, depth))
        self.interval, self.window = interval, (1000 - end_step, 1000 - start_step)
        self.counter, self.full = -1, True

    def begin_step(self, step: int, t: float) -> None:
        super().begin_step(step, t)
        inside = self.window[0] <= t <= self.window[1]
        self.counter = self.counter + 1 if inside else -1
        self.full = not inside or self.counter % self.interval == 0

    def begin_call(self, sample: torch.Tensor) -> None:
        super().begin_call(sample)
        self.skipping = not self.full and self.can_skip()
        self.skipped += self.skipping

    # The last module of the region hands its output to the first layer computed after it. Some code
    # between layers changes hidden states in place (diffusers' FreeU): keep and hand out copies.
    def recorded(self, module, output):
        return _clone(output) if module is self.region[-1] else output

    def reused(self, module, record):
        return _clone(record) if module is self.region[-1] else record


class FirstBlockSession(Session):
    """First-block cache: the first layer's residual (its output minus conv_in's) against the one of
    the last full call of the same slot, relative: mean |r - r_full| / mean |r_full|. Below
    `threshold` (and inside the start/end window, and within `max_hits` reuses in a row) the rest
    is skipped and the network's output before conv_norm_out is the first layer's output plus the
    residual the rest added at that full call."""

    name = "First-block cache"

    def __init__(self, unet, threshold: float, start: float, end: float, max_hits: int):
        self.first, region = tail_region(unet)
        super().__init__(unet, region)
        self.threshold, self.window, self.max_hits = threshold, ((1 - end) * 999, (1 - start) * 999), max_hits
        self.state: dict[int, dict] = {}  # slot -> first residual and tail residual of the last full call, hits
        self.entry = self.first_out = None

    def begin_call(self, sample: torch.Tensor) -> None:
        super().begin_call(sample)
        self.entry = self.first_out = None

    def decide(self, first_out: torch.Tensor) -> None:
        state = self.state.setdefault(self.slot, {"first": None, "tail": None, "hits": 0})
        residual = first_out - self.entry
        use = (state["first"] is not None and state["tail"] is not None and self.can_skip()
               and state["first"].shape == residual.shape
               and self.window[0] <= self.t <= self.window[1]
               and (self.max_hits < 0 or state["hits"] < self.max_hits))
        if use:
            reference = state["first"]
            use = ((residual - reference).abs().mean() / reference.abs().mean()).item() < self.threshold
        state["hits"] = state["hits"] + 1 if use else 0
        if not use:
            state["first"] = residual
        self.skipping, self.first_out = use, first_out
        self.skipped += use

    def reused(self, module, record):
        if module is self.region[-1]:
            return self.first_out + self.state[self.slot]["tail"]
        return record

    def recorded(self, module, output):
        if module is self.region[-1]:
            self.state[self.slot]["tail"] = output - self.first_out
        return output

    def patches(self) -> list[tuple[Any, Callable]]:
        def conv_in_output(original):  # the entry of the first layer
            def forward(*args, **kwargs):
                self.entry = original(*args, **kwargs)
                return self.entry
            return forward

        def first_layer(original):
            def forward(*args, **kwargs):
                output = original(*args, **kwargs)
                self.decide(hidden(output))
                return output
            return forward
        # conv_in is patched twice: the base class's call counting outside, the entry inside it.
        return [(self.unet.conv_in, conv_in_output)] + super().patches() + [(self.first, first_layer)]
