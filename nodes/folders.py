"""What the configured folders hold: checkpoints and input images, by name.

Names are relative to a configured folder. A name is only ever turned into a path by looking it
up in the folder's own listing, so no name from a workflow or a client can reach outside it.
"""
from __future__ import annotations

import os
from pathlib import Path

from latentgraph.graph.settings import Settings

BUILTIN_MODELS = Path(__file__).resolve().parent.parent / "assets" / "models"
try:  # installed package: the assets live beside the other subpackages
    import latentgraph.assets as _assets

    BUILTIN_MODELS = Path(_assets.__file__).resolve().parent / "models"
except ImportError:  # pragma: no cover
    pass

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
CHECKPOINT_EXTENSIONS = (".safetensors",)
# Pickle-based formats can run code when loaded: they are listed so that a workflow naming one
# gets a clear refusal rather than "not found".
PICKLE_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")


def is_diffusers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model_index.json").is_file()


# ComfyUI's folders in models/ for files that are not checkpoints
OTHER_MODEL_FOLDERS = ("loras", "vae", "embeddings", "controlnet", "upscale_models", "clip", "clip_vision",
                       "text_encoders", "unet", "diffusion_models", "hypernetworks", "style_models", "gligen",
                       "vae_approx", "photomaker", "t2i_adapter")


def checkpoint_roots(settings: Settings) -> list[Path]:
    """Where checkpoints are looked for, in order: ComfyUI's models/checkpoints, the models folder
    itself, then the models shipped in the package."""
    return [settings.models / "checkpoints", settings.models, BUILTIN_MODELS]


def _models_in(root: Path, is_model_folder, suffixes: tuple[str, ...], skip: tuple[Path, ...] = ()):
    """(name, path) of the models under root: folders that `is_model_folder` accepts (their files are
    parts of the one model) and files with these suffixes; hidden entries and `skip` left out."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        rel = here.relative_to(root)
        if here != root and is_model_folder(here):
            yield rel.as_posix(), here
            dirnames.clear()
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and here / d not in skip)
        for filename in sorted(filenames):
            if not filename.startswith(".") and filename.lower().endswith(suffixes):
                yield (rel / filename).as_posix(), here / filename


def list_checkpoints(settings: Settings, include_pickles: bool = False) -> dict[str, Path]:
    """Checkpoint name -> path: diffusers folders and single-file checkpoints."""
    found: dict[str, Path] = {}
    suffixes = CHECKPOINT_EXTENSIONS + (PICKLE_EXTENSIONS if include_pickles else ())
    # models/checkpoints is walked first, and ComfyUI's folders of other model kinds hold no checkpoints
    skip = tuple(settings.models / name for name in ("checkpoints", *OTHER_MODEL_FOLDERS))
    for root in checkpoint_roots(settings):
        for name, path in _models_in(root, is_diffusers_folder, suffixes, skip=skip):
            found.setdefault(name, path)
    return found


def find_checkpoint(settings: Settings, name: str) -> Path | None:
    return list_checkpoints(settings, include_pickles=True).get(name)


def list_input_images(settings: Settings) -> list[str]:
    root = settings.input
    if not root.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def find_input_image(settings: Settings, name: str) -> Path | None:
    return settings.input / name if name in list_input_images(settings) else None


def _safetensors_in(root: Path) -> dict[str, Path]:
    """Name (relative path) -> path of the .safetensors files under root, hidden ones left out."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.safetensors"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def list_loras(settings: Settings) -> dict[str, Path]:
    """LoRA name -> path: .safetensors files in models/loras (ComfyUI's folder)."""
    return _safetensors_in(settings.models / "loras")


def is_diffusers_model_folder(path: Path) -> bool:
    """One diffusers model (a VAE, a ControlNet): config.json beside its safetensors weights."""
    return path.is_dir() and (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _single_models_in(root: Path, include_pickles: bool) -> dict[str, Path]:
    suffixes = CHECKPOINT_EXTENSIONS + (PICKLE_EXTENSIONS if include_pickles else ())
    return dict(_models_in(root, is_diffusers_model_folder, suffixes))


# Folders of one model per file or diffusers folder, and what their models are called
SINGLE_MODEL_FOLDERS = {"vae": "VAE", "controlnet": "ControlNet"}


def available(names: list[str], limit: int = 20) -> str:
    """'available: a, b, c' (the first `limit`), or 'there are none', for not-found messages."""
    if not names:
        return "there are none"
    return "available: " + ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def not_found(settings: Settings, folder: str, name: str) -> str:
    """The message for a name missing from models/<folder> (one of SINGLE_MODEL_FOLDERS), with those there."""
    names = sorted(_single_models_in(settings.models / folder, include_pickles=True))
    return f"{SINGLE_MODEL_FOLDERS[folder]} {name!r} not found in {settings.models / folder}; {available(names)}"


def list_vaes(settings: Settings, include_pickles: bool = False) -> dict[str, Path]:
    """VAE name -> path in models/vae (ComfyUI's folder): single .safetensors files and diffusers
    VAE folders (config.json beside the weights)."""
    return _single_models_in(settings.models / "vae", include_pickles)


def list_controlnets(settings: Settings, include_pickles: bool = False) -> dict[str, Path]:
    """ControlNet name -> path in models/controlnet (ComfyUI's folder): single .safetensors files and
    diffusers ControlNet folders."""
    return _single_models_in(settings.models / "controlnet", include_pickles)


EMBEDDING_EXTENSIONS = (".safetensors", ".pt", ".bin")  # the last two read with torch.load(weights_only=True)


def list_embeddings(settings: Settings) -> dict[str, Path]:
    """Textual inversion name -> path: .safetensors, .pt and .bin files in models/embeddings (ComfyUI's
    folder), by name with and without the extension; a bare name prefers .safetensors, then .pt."""
    files = dict(_models_in(settings.models / "embeddings", lambda _: False, EMBEDDING_EXTENSIONS))
    bare: dict[str, Path] = {}
    for suffix in EMBEDDING_EXTENSIONS:
        bare.update({name[:-len(suffix)]: path for name, path in files.items()
                     if name.lower().endswith(suffix) and name[:-len(suffix)] not in bare})
    return {**bare, **files}


CHOICE_SOURCES = {
    "checkpoints": lambda settings: sorted(list_checkpoints(settings, include_pickles=True)),
    "input_images": list_input_images,
    "loras": lambda settings: sorted(list_loras(settings)),
    "vaes": lambda settings: sorted(list_vaes(settings, include_pickles=True)),
    "controlnets": lambda settings: sorted(list_controlnets(settings, include_pickles=True)),
}


def resolve_choices(settings: Settings, source: str) -> list[str]:
    return CHOICE_SOURCES[source](settings)


def resolve_file(settings: Settings, folder: str, name: str) -> Path | None:
    """The path of a file input's value, or None if the folder has no such entry."""
    if folder == "checkpoints":
        return find_checkpoint(settings, name)
    if folder == "input":
        return find_input_image(settings, name)
    if folder == "loras":
        return list_loras(settings).get(name)
    if folder == "vae":
        return list_vaes(settings, include_pickles=True).get(name)
    if folder == "controlnet":
        return list_controlnets(settings, include_pickles=True).get(name)
    raise ValueError(f"unknown folder kind {folder!r}")
