"""Single-file checkpoints: one .safetensors in the original (LDM / SGM) key layout, loaded offline.

The family (SD1.5, SDXL base, SDXL refiner) is told from the state dict's keys with diffusers'
`infer_diffusers_model_type`; diffusers' single-file machinery then converts the weights, with the
configs that latentgraph ships for that family (assets/configs/<family>: JSON only) instead of
asking the Hub. The CLIP tokenizers are built from the one BPE vocabulary shipped in
assets/configs/clip (see build_clip_tokenizer.py and docs/sdxl.md).
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import diffusers
from diffusers.loaders.single_file_utils import infer_diffusers_model_type
from safetensors import SafetensorError, safe_open
from transformers import CLIPTokenizer

from latentgraph.graph.errors import InputError
from latentgraph.nodes.loaders import assemble

try:  # installed package: the assets live beside the other subpackages
    import latentgraph.assets as _assets

    CONFIGS = Path(_assets.__file__).resolve().parent / "configs"
except ImportError:  # pragma: no cover
    CONFIGS = Path(__file__).resolve().parent.parent / "assets" / "configs"

# diffusers' model type -> (our family, pipeline class, prefixes of the weights it needs)
FAMILIES = {
    "v1": ("sd15", "StableDiffusionPipeline", ("cond_stage_model.transformer.",)),
    "xl_base": ("sdxl", "StableDiffusionXLPipeline",
                ("conditioner.embedders.0.transformer.", "conditioner.embedders.1.model.")),
    "xl_refiner": ("sdxl_refiner", "StableDiffusionXLImg2ImgPipeline", ("conditioner.embedders.0.model.",)),
}
COMMON_PREFIXES = ("model.diffusion_model.", "first_stage_model.")


class _LazyStateDict(Mapping):
    """The keys of a safetensors file, reading a tensor only when asked for (family detection looks
    at a few shapes; the weights are read once, by diffusers)."""

    def __init__(self, handle):
        self._handle, self._keys = handle, set(handle.keys())

    def __getitem__(self, key):
        return self._handle.get_tensor(key)

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def __contains__(self, key):
        return key in self._keys


def detect_family(path: Path) -> tuple[str, str]:
    """(our family, diffusers pipeline class name) of a single-file checkpoint, or InputError."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = _LazyStateDict(handle)
            model_type = infer_diffusers_model_type(state)
            keys = list(state)
    except (SafetensorError, OSError) as exc:
        raise InputError("ckpt_name", f"{path.name} is not a readable safetensors file: {exc}") from None
    if model_type not in FAMILIES or not any(k.startswith("model.diffusion_model.") for k in keys):
        raise InputError("ckpt_name", f"{path.name} looks like a {model_type!r} checkpoint; single files of "
                                      "SD1.5, SDXL base and SDXL refiner are supported (use a diffusers folder "
                                      "for other models)")
    family, pipeline, prefixes = FAMILIES[model_type]
    missing = [p.rstrip(".") for p in COMMON_PREFIXES + prefixes if not any(k.startswith(p) for k in keys)]
    if missing:
        raise InputError("ckpt_name", f"{path.name} is a {family} checkpoint without {', '.join(missing)}: only "
                                      "complete checkpoints (UNet, VAE and text encoders) are loaded")
    return family, pipeline


def clip_tokenizer(folder: Path) -> CLIPTokenizer:
    """A tokenizer subfolder of a shipped config: its tokenizer_config.json with the shared vocabulary."""
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings.pop("tokenizer_class", None)
    bpe = CONFIGS / "clip"
    return CLIPTokenizer(vocab=str(bpe / "vocab.json"), merges=str(bpe / "merges.txt"), **settings)


def _tokenizers(config: Path) -> dict:
    """Tokenizers to hand to diffusers: those of the shipped configs, which have no vocabulary files
    of their own (a complete diffusers config folder's own tokenizers are loaded by diffusers)."""
    given = {}
    for name in ("tokenizer", "tokenizer_2"):
        folder = config / name
        if folder.is_dir() and not any((folder / f).exists() for f in ("tokenizer.json", "vocab.json")):
            given[name] = clip_tokenizer(folder)
    return given


def _sampling_marks(path: Path) -> dict:
    """Scheduler settings of a checkpoint marked as v-prediction (`v_pred` key) or zero terminal SNR
    (`ztsnr`), the marks that SDXL v-prediction fine-tunes carry and ComfyUI reads."""
    with safe_open(str(path), framework="pt") as handle:
        keys = set(handle.keys())
    marks = {}
    if "v_pred" in keys:
        marks["prediction_type"] = "v_prediction"
    if "ztsnr" in keys:
        marks["rescale_betas_zero_snr"] = True
    return marks


def load(path: Path, device, dtype, configs: Path | None = None):
    """(MODEL, CLIP, VAE) of a single-file checkpoint. `configs` holds one diffusers-layout config
    folder per family (default: the ones shipped in assets/configs)."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise InputError("ckpt_name", f"{path.name}: only .safetensors single files are loaded")
    family, pipeline_name = detect_family(path)
    config = (configs or CONFIGS) / family
    pipeline_class = getattr(diffusers, pipeline_name)
    pipe = pipeline_class.from_single_file(str(path), config=str(config), local_files_only=True, torch_dtype=dtype,
                                           **_tokenizers(config))
    modules = {"unet": pipe.unet, "vae": pipe.vae}
    names = {"sd15": ("text_encoder",), "sdxl": ("text_encoder", "text_encoder_2"),
             "sdxl_refiner": ("text_encoder_2",)}[family]
    modules.update((name, getattr(pipe, name)) for name in names)
    for name, module in modules.items():
        # Without accelerate diffusers loads with strict=False; with it, weights missing from the
        # file stay on the meta device. Either way a wrong file must not load silently.
        if any(p.is_meta for p in module.parameters()):
            raise InputError("ckpt_name", f"{path.name}: the {name} weights are incomplete in this file")
        module.to(device).eval()
    tokenizers = [getattr(pipe, n.replace("text_encoder", "tokenizer")) for n in names]
    index = json.loads((config / "model_index.json").read_text())
    scheduler_config = json.loads((config / "scheduler" / "scheduler_config.json").read_text())
    scheduler_config.update(_sampling_marks(path))
    return assemble(path.name, pipe.unet, pipe.vae, tokenizers, [modules[n] for n in names], scheduler_config,
                    family, bool(index.get("force_zeros_for_empty_prompt", family == "sdxl")))


def load_vae(path: Path, dtype, configs: Path | None = None):
    """A single-file VAE (the original autoencoder's keys, with or without `first_stage_model.`).
    SD1.5's and SDXL's VAEs have the same shapes and differ in their latent scaling, which the file
    does not hold: a name with "xl" in it takes SDXL's VAE config (as InvokeAI's model probe
    decides), any other SD1.5's."""
    family = "sdxl" if "xl" in path.name.lower() else "sd15"
    try:
        vae = diffusers.AutoencoderKL.from_single_file(str(path), config=str((configs or CONFIGS) / family),
                                                       subfolder="vae", local_files_only=True, torch_dtype=dtype)
    except (SafetensorError, OSError, KeyError, RuntimeError, ValueError) as exc:
        raise InputError("vae_name", f"{path.name} could not be read as an SD1.5/SDXL VAE: {exc}") from None
    if any(p.is_meta for p in vae.parameters()):
        raise InputError("vae_name", f"{path.name}: the VAE weights are incomplete in this file")
    return vae


def load_controlnet(path: Path, dtype, configs: Path | None = None):
    """A single-file ControlNet: the original layout (`control_model.input_blocks...`, SD1.5 only, as
    diffusers converts it) or diffusers' layout in one file (common for SDXL). The file holds no
    config: it is read as a ControlNet of the shipped SD1.5 or SDXL UNet config, told apart by the
    SDXL text-time embedding; other shapes (SDXL "mid"/"small", SD2) need a diffusers folder."""
    from diffusers import ControlNetModel
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InputError("control_net_name", f"{path.name} is not a readable safetensors file: {exc}") from None
    family = "sdxl" if any(k.endswith(("add_embedding.linear_1.weight", "label_emb.0.0.weight")) for k in state) \
        else "sd15"
    unet_config = json.loads(((configs or CONFIGS) / family / "unet" / "config.json").read_text())
    accepted = inspect.signature(ControlNetModel.__init__).parameters
    net = ControlNetModel.from_config({k: v for k, v in unet_config.items() if k in accepted})
    weights = convert_controlnet_checkpoint(state, net.config)
    try:
        if any(v is None for v in weights.values()):
            raise RuntimeError("weights missing from the file")
        net.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:200]
        raise InputError("control_net_name", f"{path.name} is not a ControlNet of the standard {family} shape "
                                             f"({first}); put it in models/controlnet as a diffusers folder "
                                             "(config.json beside the weights)") from None
    return net.to(dtype=dtype).eval()
