"""Workflows embedded in PNG text chunks, so that a saved image can be reopened as its workflow.

A sweep's grid also carries the sweep (a "sweep" chunk), so that it reopens as workflow and sweep."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from latentgraph.graph import limits as limits_mod
from latentgraph.graph.errors import WorkflowFormatError
from latentgraph.graph.limits import Limits

# "workflow" holds our format (or, in ComfyUI's PNGs, its UI format); ComfyUI also writes "prompt".
KEYS = ("workflow", "prompt")
MAX_PIXELS = 64_000_000  # text chunks after the pixels are read only from pictures this small


def png_info(workflow: dict, sweep: dict | None = None) -> PngInfo:
    info = PngInfo()
    info.add_text("workflow", json.dumps(workflow, separators=(",", ":")))
    if sweep is not None:
        info.add_text("sweep", json.dumps(sweep, separators=(",", ":")))
    return info


def _text_chunks(source, keys: tuple[str, ...], max_pixels: int) -> dict[str, str]:
    """The PNG's text chunks. Those before the pixels (where we and ComfyUI write them) are read without
    decoding the pixels; when none of `keys` is among them, the rest only from pictures of at most
    `max_pixels`."""
    if isinstance(source, (bytes, bytearray)):
        import io
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            if image.format != "PNG":
                raise WorkflowFormatError(f"not a PNG but a {image.format} image")
            text = {k: v for k, v in image.info.items() if isinstance(v, str)}
            if not any(key in text for key in keys) and image.width * image.height <= max_pixels:
                text = dict(image.text)
    except WorkflowFormatError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on broken files
        raise WorkflowFormatError(f"not a readable PNG: {type(exc).__name__}: {exc}") from None
    return text


def sweep_from_png(source, limits: Limits = limits_mod.DEFAULT, max_pixels: int = MAX_PIXELS) -> Any:
    """The sweep embedded in a sweep's grid PNG (a path, bytes or a file object), or None."""
    text = _text_chunks(source, ("sweep",), max_pixels).get("sweep")
    try:
        return limits_mod.parse(text, limits) if isinstance(text, str) else None
    except WorkflowFormatError:
        return None


def workflow_from_png(source, limits: Limits = limits_mod.DEFAULT, max_pixels: int = MAX_PIXELS) -> Any:
    """The workflow embedded in a PNG (a path, bytes or a file object), within `limits`."""
    text = _text_chunks(source, KEYS, max_pixels)
    errors = []
    for key in KEYS:
        if isinstance(text.get(key), str):
            try:
                return limits_mod.parse(text[key], limits)
            except WorkflowFormatError as exc:
                errors.append(f"its {key!r} text chunk: {exc}")
    name = source.name if isinstance(source, Path) else "this PNG"
    if errors:
        raise WorkflowFormatError(f"{name}: " + "; ".join(errors))
    raise WorkflowFormatError(f"{name} holds no workflow (no 'workflow' or 'prompt' text chunk)")
