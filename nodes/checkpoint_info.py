"""What a checkpoint is, read cheaply from its configs or its safetensors header (no weights are
loaded, nothing heavy is imported): its family and its native resolution, so that the editor can
give new nodes defaults that suit it (an EmptyLatentImage next to tiny-shapes is 64 x 64).
"""
from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

# Resolution the families were trained at, for single files (a diffusers folder says its own).
NATIVE = {"sd15": 512, "sdxl": 1024, "sdxl_refiner": 1024}
MAX_HEADER = 100 << 20  # a safetensors header larger than this is not read
_memo: dict[tuple, dict | None] = {}
_lock = threading.Lock()


def describe(path: Path) -> dict | None:
    """{"family", "resolution": [w, h]} (resolution only where known), or None if unknown."""
    path = Path(path)
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with _lock:
            if key in _memo:
                return _memo[key]
        info = _diffusers(path) if path.is_dir() else _single_file(path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, struct.error):
        info = None
        key = None
    if key is not None:
        with _lock:
            _memo[key] = info
    return info


def _read_json(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return doc if isinstance(doc, dict) else {}


def _diffusers(folder: Path) -> dict | None:
    index = _read_json(folder / "model_index.json")
    pipeline = index.get("_class_name")
    if not isinstance(pipeline, str):
        return None
    unet = _read_json(folder / "unet" / "config.json")
    vae = _read_json(folder / "vae" / "config.json")
    cross = unet.get("cross_attention_dim")
    if "XL" in pipeline:
        family = "sdxl_refiner" if cross == 1280 or not (index.get("text_encoder") or [None])[0] else "sdxl"
    elif pipeline == "StableDiffusionPipeline":
        family = "sd2" if cross == 1024 else "sd15"
    else:
        family = pipeline.removesuffix("Pipeline").lower()
    info: dict = {"family": family}
    size, levels = unet.get("sample_size"), vae.get("block_out_channels")
    if isinstance(size, int) and isinstance(levels, list) and levels:
        side = size * 2 ** (len(levels) - 1)  # the VAE halves the picture at each level but the last
        info["resolution"] = [side, side]
    return info


def _single_file(path: Path) -> dict | None:
    if path.suffix.lower() != ".safetensors":
        return None
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > MAX_HEADER:
            return None
        keys = set(json.loads(f.read(length)))
    if not any(k.startswith("model.diffusion_model.") for k in keys):
        return None
    if any(k.startswith("conditioner.embedders.1.model.") for k in keys):
        family = "sdxl"
    elif any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        family = "sdxl_refiner"
    elif any(k.startswith("cond_stage_model.model.") for k in keys):
        return {"family": "sd2"}  # 512 or 768 (v-prediction): the header does not say
    elif any(k.startswith("cond_stage_model.transformer.") for k in keys):
        family = "sd15"
    else:
        return None
    return {"family": family, "resolution": [NATIVE[family]] * 2}
