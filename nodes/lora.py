"""LoRA: low-rank adapters loaded into the shared model with diffusers' (PEFT) LoRA machinery.

The adapter is loaded once into the checkpoint's own UNet and text encoders, under a name derived
from the file's content. MODEL and CLIP values then carry which adapters to switch on, at which
strength; samplers and text encoders switch exactly those on for their call and off after it, so
the same loaded checkpoint serves graphs with and without the LoRA, and results equal diffusers'
`load_lora_weights` + `set_adapters`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys

from latentgraph.graph.cache import file_digest
from latentgraph.graph.errors import InputError
from latentgraph.nodes import folders
from latentgraph.nodes.spec import CLIP, COMBO, FLOAT, MODEL, Input, Output, node
from latentgraph.nodes.values import DiffusionModel, TextEncoder


def loaded_adapters(module) -> set[str]:
    """Names of the LoRA adapters injected into a module (none while PEFT was never imported)."""
    tuners = sys.modules.get("peft.tuners.tuners_utils")  # not imported here: a run without LoRAs never needs it
    if tuners is None:
        return set()
    return {name for m in module.modules() if isinstance(m, tuners.BaseTunerLayer) for name in m.lora_A}


@contextlib.contextmanager
def adapters_active(module, adapters: tuple):
    """Switch on exactly `adapters` ((name, strength) pairs) in a module for the duration."""
    if not adapters and not loaded_adapters(module):
        yield
        return
    from diffusers.utils.peft_utils import set_adapter_layers, set_weights_and_activate_adapters

    if adapters:
        set_adapter_layers(module, enabled=True)  # activating does not undo an earlier disable
        set_weights_and_activate_adapters(module, [n for n, _ in adapters], [w for _, w in adapters])
    else:
        set_adapter_layers(module, enabled=False)
    try:
        yield
    finally:
        set_adapter_layers(module, enabled=False)


@contextlib.contextmanager
def clip_adapters(clip: TextEncoder):
    """The LoRAs a CLIP value asks for, switched on in each of its encoders."""
    with contextlib.ExitStack() as stack:
        for encoder in clip.encoders:
            stack.enter_context(adapters_active(encoder, clip.adapters))
        yield


def _mixin(family: str):
    from diffusers.loaders import StableDiffusionLoraLoaderMixin, StableDiffusionXLLoraLoaderMixin

    return StableDiffusionLoraLoaderMixin if family == "sd15" else StableDiffusionXLLoraLoaderMixin


def load_text_encoder_lora(encoder, state_dict: dict, alphas: dict | None, metadata: dict | None, prefix: str,
                           name: str) -> None:
    """diffusers' `load_lora_into_text_encoder`, with the adapter injected by PEFT itself: the
    transformers route it takes (`load_adapter`) demands a PEFT release newer than PyPI has."""
    from diffusers.utils import convert_state_dict_to_diffusers, convert_state_dict_to_peft
    from diffusers.utils.peft_utils import _create_lora_config
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    weights = {k.removeprefix(f"{prefix}."): v for k, v in state_dict.items() if k.startswith(f"{prefix}.")}
    weights = convert_state_dict_to_peft(convert_state_dict_to_diffusers(weights))
    if not hasattr(encoder, "text_model"):  # transformers 5 flattened CLIPTextModel (not ...WithProjection)
        weights = {k.removeprefix("text_model."): v for k, v in weights.items()}
    ranks = {f"{n}.lora_B.weight": weights[f"{n}.lora_B.weight"].shape[1] for n, _ in encoder.named_modules()
             if f"{n}.lora_B.weight" in weights}
    if alphas is not None:
        alphas = {k.removeprefix(f"{prefix}."): v for k, v in alphas.items() if k.split(".")[0] == prefix}
    if metadata is not None:  # the LoraConfig saved with the file (rank, alpha, targets)
        metadata = {k.removeprefix(f"{prefix}."): v for k, v in metadata.items() if k.startswith(f"{prefix}.")} or None
    config = _create_lora_config(weights, alphas, metadata, ranks, is_unet=False)
    inject_adapter_in_model(config, encoder, adapter_name=name)
    result = set_peft_model_state_dict(encoder, weights, adapter_name=name)
    if getattr(result, "unexpected_keys", None):
        raise InputError("lora_name",
                         f"LoRA weights that fit no layer of the text encoder: {result.unexpected_keys[:3]}")
    encoder.to(device=encoder.device, dtype=encoder.dtype)


def load_adapter(model: DiffusionModel, clip: TextEncoder | None, name: str, path) -> tuple[bool, bool]:
    """Load a LoRA file into the model's UNet (and the text encoders) once; returns whether it has
    UNet and text-encoder weights."""
    mixin = _mixin(model.family)
    kwargs = {"unet_config": model.unet.config} if model.family != "sd15" else {}
    state_dict, alphas, metadata = mixin.lora_state_dict(str(path), return_lora_metadata=True, **kwargs)
    if not state_dict or not all("lora" in key for key in state_dict):
        raise InputError("lora_name", f"{path.name} is not a LoRA file (no LoRA weights found)")
    has_unet = any(k.startswith("unet.") for k in state_dict)
    prefixes = {"sd15": ["text_encoder"], "sdxl": ["text_encoder", "text_encoder_2"],
                "sdxl_refiner": ["text_encoder_2"]}[model.family]
    has_text = any(k.startswith(tuple(f"{p}." for p in prefixes)) for k in state_dict)
    if has_unet and name not in loaded_adapters(model.unet):
        mixin.load_lora_into_unet(state_dict, alphas, model.unet, adapter_name=name, metadata=metadata)
    if clip is not None:
        for prefix, encoder in zip(prefixes, clip.encoders):
            if any(k.startswith(prefix + ".") for k in state_dict) and name not in loaded_adapters(encoder):
                load_text_encoder_lora(encoder, state_dict, alphas, metadata, prefix, name)
    return has_unet, has_text


def _apply(ctx, model: DiffusionModel, clip: TextEncoder | None, lora_name: str, strength_model: float,
           strength_clip: float):
    path = folders.list_loras(ctx.settings).get(lora_name)
    if path is None:
        raise InputError("lora_name", f"LoRA {lora_name!r} is not in {ctx.settings.models / 'loras'}")
    name = "lora_" + file_digest(path)[:16]  # the same file is one adapter, whatever it is called
    has_unet, has_text = load_adapter(model, clip, name, path)
    if has_unet and strength_model:
        model = dataclasses.replace(model, adapters=model.adapters + ((name, strength_model),))
    if clip is not None and has_text and strength_clip:
        clip = dataclasses.replace(clip, adapters=clip.adapters + ((name, strength_clip),))
    return model, clip


LORA_INPUT = Input("lora_name", COMBO, choices_from="loras", file_folder="loras",
                   tooltip="A .safetensors LoRA in models/loras (diffusers, kohya or A1111 layouts).")
STRENGTH = dict(default=1.0, min=-100.0, max=100.0, step=0.01)


@node("LoraLoader", category="loaders",
      description="Applies a LoRA to the model and the text encoder, each with its own strength. Chain several "
                  "to combine them.",
      inputs=[Input("model", MODEL), Input("clip", CLIP), LORA_INPUT,
              Input("strength_model", FLOAT, **STRENGTH), Input("strength_clip", FLOAT, **STRENGTH)],
      outputs=[Output("MODEL", MODEL), Output("CLIP", CLIP)])
def lora_loader(ctx, model, clip, lora_name, strength_model, strength_clip):
    return _apply(ctx, model, clip, lora_name, strength_model, strength_clip)


@node("LoraLoaderModelOnly", category="loaders", description="Applies a LoRA to the model only.",
      inputs=[Input("model", MODEL), LORA_INPUT, Input("strength_model", FLOAT, **STRENGTH)],
      outputs=[Output("MODEL", MODEL)])
def lora_loader_model_only(ctx, model, lora_name, strength_model):
    return (_apply(ctx, model, None, lora_name, strength_model, 0.0)[0],)
