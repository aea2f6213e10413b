"""Tiny SDXL base and refiner checkpoints, and SDXL workflows, shared by the SDXL and ComfyUI tests."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.tiny_random import save_sdxl

BASE, REFINER = "tiny-sdxl", "tiny-sdxl-refiner"


@pytest.fixture(scope="session")
def sdxl_models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sdxl-models")
    save_sdxl(root / "checkpoints" / BASE, seed=0)
    save_sdxl(root / "checkpoints" / REFINER, seed=1, refiner=True)
    return root


@pytest.fixture
def sdxl_settings(sdxl_models_dir, tmp_path):
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=sdxl_models_dir, input=tmp_path / "input", output=tmp_path / "output",
                    temp=tmp_path / "temp", device="cpu")


@pytest.fixture
def sdxl_executor(sdxl_settings):
    return Executor(sdxl_settings)


def loaded(executor, family: str):
    """(MODEL, CLIP, VAE) of the loaded checkpoint of a family."""
    return next(m for m in executor.loaded_models() if getattr(m[0], "family", None) == family)


def pipeline(executor, cls, family: str, scheduler):
    """A diffusers SDXL pipeline made of the very modules the executor loaded."""
    model, clip, vae = loaded(executor, family)
    if family == "sdxl_refiner":
        return cls(vae=vae.vae, text_encoder=None, text_encoder_2=clip.encoders[0], tokenizer=None,
                   tokenizer_2=clip.tokenizers[0], unet=model.unet, scheduler=scheduler,
                   requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    return cls(vae=vae.vae, text_encoder=clip.encoders[0], text_encoder_2=clip.encoders[1],
               tokenizer=clip.tokenizers[0], tokenizer_2=clip.tokenizers[1], unet=model.unet, scheduler=scheduler,
               force_zeros_for_empty_prompt=True)


def scheduler_for(executor, family: str, class_name: str, **flags):
    model = loaded(executor, family)[0]
    return getattr(diffusers, class_name).from_config(model.scheduler_config, **flags)


def as_uint8(images: np.ndarray) -> np.ndarray:
    return (images * 255).round().astype("uint8")


def ref(node: str, output: str) -> dict:
    return {"node": node, "output": output}


def sdxl_txt2img(prompt="a large red circle", negative="", seed=3, steps=6, cfg=6.5, sampler_name="euler",
                 scheduler="normal", size=32) -> dict:
    return {"format": "latentgraph", "version": 3, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": BASE}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"), "latent_image": ref("latent", "LATENT"), "seed": seed,
            "steps": steps, "cfg": cfg, "sampler_name": sampler_name, "scheduler": scheduler, "denoise": 1.0}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("decode", "IMAGE"), "filename_prefix": "sdxl"}},
    }}


def base_and_refiner(prompt="a large red circle", negative="", seed=5, steps=40, split=32, cfg=6.0,
                     sampler_name="euler", scheduler="normal", size=16) -> dict:
    """The SDXL base for steps [0, split) with leftover noise, then the refiner for the rest."""
    def sampler(model, pos, neg, latent, add_noise, start, end, leftover):
        return {"type": "KSamplerAdvanced", "inputs": {
            "model": ref(model, "MODEL"), "positive": ref(pos, "CONDITIONING"), "negative": ref(neg, "CONDITIONING"),
            "latent_image": latent, "add_noise": add_noise, "noise_seed": seed, "steps": steps, "cfg": cfg,
            "sampler_name": sampler_name, "scheduler": scheduler, "start_at_step": start, "end_at_step": end,
            "return_with_leftover_noise": leftover}}

    return {"format": "latentgraph", "version": 3, "nodes": {
        "base": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": BASE}},
        "refiner": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": REFINER}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("base", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ref("base", "CLIP")}},
        "rpos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("refiner", "CLIP")}},
        "rneg": {"type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ref("refiner", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "first": sampler("base", "pos", "neg", ref("latent", "LATENT"), "enable", 0, split, "enable"),
        "second": sampler("refiner", "rpos", "rneg", ref("first", "LATENT"), "disable", split, 10000, "disable"),
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("second", "LATENT"), "vae": ref("refiner", "VAE")}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("decode", "IMAGE"), "filename_prefix": "refined"}},
    }}
