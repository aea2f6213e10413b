"""Helpers shared by the tests: reading images, building workflows."""
from __future__ import annotations

import numpy as np
from PIL import Image


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def txt2img(ckpt="tiny-sd15", prompt="a red circle", negative="", seed=1, steps=6, cfg=6.0, sampler_name="euler",
            scheduler="normal", width=64, height=64, batch_size=1) -> dict:
    """Our txt2img workflow, with readable node ids."""
    def ref(node, output):
        return {"node": node, "output": output}

    return {"format": "latentgraph", "version": 3, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": batch_size}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"),
            "latent_image": ref("latent", "LATENT"), "seed": seed, "steps": steps, "cfg": cfg,
            "sampler_name": sampler_name, "scheduler": scheduler, "denoise": 1.0}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("decode", "IMAGE"), "filename_prefix": "test"}},
    }}


def add_lora(workflow: dict, lora: str, strength_model: float, strength_clip: float) -> dict:
    """The workflow (ours or sdxl_txt2img) with a LoraLoader between its checkpoint and its sampler and prompts."""
    nodes = workflow["nodes"]
    nodes["lora"] = {"type": "LoraLoader", "inputs": {
        "model": {"node": "ckpt", "output": "MODEL"}, "clip": {"node": "ckpt", "output": "CLIP"},
        "lora_name": lora, "strength_model": strength_model, "strength_clip": strength_clip}}
    nodes["sampler"]["inputs"]["model"] = {"node": "lora", "output": "MODEL"}
    for name in ("pos", "neg"):
        nodes[name]["inputs"]["clip"] = {"node": "lora", "output": "CLIP"}
    return workflow


def to_img2img(workflow: dict, image: str, denoise: float) -> dict:
    """A txt2img workflow (ours or sdxl_txt2img) turned into img2img: `image` from the input folder,
    VAE-encoded, as the sampler's latent, at `denoise`."""
    nodes = workflow["nodes"]
    del nodes["latent"]
    nodes["load"] = {"type": "LoadImage", "inputs": {"image": image}}
    nodes["encode"] = {"type": "VAEEncode", "inputs": {"pixels": {"node": "load", "output": "IMAGE"},
                                                        "vae": {"node": "ckpt", "output": "VAE"}}}
    nodes["sampler"]["inputs"].update(latent_image={"node": "encode", "output": "LATENT"}, denoise=denoise)
    return workflow


def picture_with_hole(path, size: int, rows: slice, columns: slice, seed: int) -> np.ndarray:
    """A noisy RGBA picture, opaque but for a transparent rectangle (LoadImage's MASK: the part to
    repaint), saved at `path`. Returns its pixels."""
    rgba = np.full((size, size, 4), 255, dtype=np.uint8)
    rgba[..., :3] = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    rgba[rows, columns, 3] = 0
    Image.fromarray(rgba, "RGBA").save(path)
    return rgba


def shipped_model_executor(tmp_path):
    """An executor with empty folders: only the shipped tiny-shapes model is there."""
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings
    for name in ("input", "output", "temp", "models"):
        (tmp_path / name).mkdir()
    return Executor(Settings(models=tmp_path / "models", input=tmp_path / "input", output=tmp_path / "output",
                             temp=tmp_path / "temp", device="cpu"))
