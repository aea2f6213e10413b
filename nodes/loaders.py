"""Checkpoint loading: diffusers folders here, single-file .safetensors in `single_file`."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from latentgraph.graph.errors import InputError
from latentgraph.lazy import diffusers
from latentgraph.nodes import folders
from latentgraph.nodes.previews import LatentPreviewer
from latentgraph.nodes.quiet import quiet_loading
from latentgraph.nodes.spec import CLIP, COMBO, MODEL, VAE, Input, Output, node
from latentgraph.nodes.values import DiffusionModel, TextEncoder, VAEModel


def family_of(has_text_encoder: bool, has_text_encoder_2: bool) -> str:
    """SD1.5 has one text encoder, SDXL base two, the SDXL refiner only the second."""
    if not has_text_encoder_2:
        return "sd15"
    return "sdxl" if has_text_encoder else "sdxl_refiner"


def assemble(name: str, unet, vae, tokenizers: list, encoders: list, scheduler_config: dict, family: str,
             force_zeros_for_empty_prompt: bool):
    vae_model = VAEModel(vae=vae, name=name)
    model = DiffusionModel(unet=unet, scheduler_config=scheduler_config, family=family, name=name,
                           vae_scale_factor=vae_model.scale_factor, previewer=LatentPreviewer(vae))
    clip = TextEncoder(tokenizers=tokenizers, encoders=encoders, family=family, name=name,
                       force_zeros_for_empty_prompt=force_zeros_for_empty_prompt)
    return model, clip, vae_model


def load_diffusers_folder(path: Path, device, dtype):
    """The components of a diffusers-format pipeline folder (safetensors weights only)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    index = json.loads((path / "model_index.json").read_text())
    options = dict(torch_dtype=dtype, use_safetensors=True, local_files_only=True)
    for part in ("unet", "vae"):
        if not any((path / part).glob("*.safetensors")):
            raise InputError("ckpt_name", f"{path.name}/{part} has no .safetensors weights; pickle weights "
                                          "(.bin) are not loaded: convert the folder to safetensors")
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", **options).to(device)
    vae = AutoencoderKL.from_pretrained(path, subfolder="vae", **options).to(device)
    tokenizers, encoders = [], []
    has_1 = bool((index.get("text_encoder") or [None])[0])
    has_2 = bool((index.get("text_encoder_2") or [None])[0])
    if has_1:
        tokenizers.append(CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", local_files_only=True))
        encoders.append(CLIPTextModel.from_pretrained(path, subfolder="text_encoder", **options).to(device))
    if has_2:
        tokenizers.append(CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2", local_files_only=True))
        encoders.append(CLIPTextModelWithProjection.from_pretrained(path, subfolder="text_encoder_2",
                                                                    **options).to(device))
    scheduler_config = json.loads((path / "scheduler" / "scheduler_config.json").read_text())
    family = family_of(has_1, has_2)
    return assemble(path.name, unet, vae, tokenizers, encoders, scheduler_config, family,
                    bool(index.get("force_zeros_for_empty_prompt", family != "sd15")))


def load_checkpoint(path: Path, device, dtype):
    if path.is_dir():
        return load_diffusers_folder(path, device, dtype)
    if path.suffix.lower() in folders.CHECKPOINT_EXTENSIONS:
        from latentgraph.nodes import single_file
        return single_file.load(path, device, dtype)
    raise InputError("ckpt_name", f"{path.name}: only safetensors checkpoints are loaded")


def pickle_refusal(input_name: str, what: str):
    """A node check refusing a pickle file named in `input_name` (`what`: how to call it)."""
    def refuse(values: dict) -> list[tuple[str, str]]:
        name = str(values.get(input_name, ""))
        if name.lower().endswith(folders.PICKLE_EXTENSIONS):
            return [(input_name, f"{name!r} is a pickle {what}, which can run arbitrary code when loaded; "
                                 "only .safetensors files and diffusers folders are loaded (convert it to "
                                 "safetensors first)")]
        return []
    return refuse


@node("CheckpointLoaderSimple", category="loaders",
      description="Loads a checkpoint (a diffusers folder or a single .safetensors file) from the models folder: "
                  "its denoising model, text encoder(s) and VAE. Loaded once and shared by every run.",
      inputs=[Input("ckpt_name", COMBO, choices_from="checkpoints", file_folder="checkpoints",
                    tooltip="A checkpoint in models/checkpoints, models/, or a model shipped with latentgraph.")],
      outputs=[Output("MODEL", MODEL), Output("CLIP", CLIP), Output("VAE", VAE)],
      holds_models=True, check=pickle_refusal("ckpt_name", "checkpoint"))
def checkpoint_loader_simple(ctx, ckpt_name: str):
    path = folders.find_checkpoint(ctx.settings, ckpt_name)
    if path is None:
        names = sorted(folders.list_checkpoints(ctx.settings, include_pickles=True))
        raise InputError("ckpt_name", f"checkpoint {ckpt_name!r} not found; {folders.available(names)}")
    with quiet_loading():
        model, clip, vae = load_checkpoint(path, ctx.device, ctx.dtype)
    if ctx.settings.compile:
        model, vae = dataclasses.replace(model, compile=True), dataclasses.replace(vae, compile=True)
    return model, clip, vae


@node("VAELoader", category="loaders",
      description="Loads a VAE from models/vae (a single .safetensors file or a diffusers VAE folder), to decode "
                  "and encode with instead of the checkpoint's own. A single file whose name contains 'xl' is "
                  "read as SDXL's VAE, any other as SD1.5's (the file does not say which latent scaling it had).",
      inputs=[Input("vae_name", COMBO, choices_from="vaes", file_folder="vae", tooltip="A VAE in models/vae.")],
      outputs=[Output("VAE", VAE)],
      holds_models=True, check=pickle_refusal("vae_name", "file"))
def vae_loader(ctx, vae_name: str):
    path = folders.list_vaes(ctx.settings).get(vae_name)
    if path is None:
        raise InputError("vae_name", folders.not_found(ctx.settings, "vae", vae_name))
    vae = load_one_model(path, ctx.dtype, "AutoencoderKL", "load_vae")
    return (VAEModel(vae=vae.to(ctx.device).eval(), name=vae_name, compile=ctx.settings.compile),)


def load_one_model(path: Path, dtype, diffusers_class: str, single_file_loader: str):
    """One model (a VAE, a ControlNet) from a diffusers folder, or from a single file with
    `single_file`'s loader of that name."""
    with quiet_loading():
        if path.is_dir():
            cls = getattr(diffusers, diffusers_class)
            return cls.from_pretrained(path, torch_dtype=dtype, use_safetensors=True, local_files_only=True)
        from latentgraph.nodes import single_file
        return getattr(single_file, single_file_loader)(path, dtype)
