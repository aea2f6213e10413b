"""Workflows embedded in PNG text chunks, so that a saved image can be reopened as its workflow."""
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


def png_info(workflow: dict) -> PngInfo:
    info = PngInfo()
    info.add_text("workflow", json.dumps(workflow, separators=(",", ":")))
    return info


def workflow_from_png(source, limits: Limits = limits_mod.DEFAULT, max_pixels: int = 64_000_000) -> Any:
    """The workflow embedded in a PNG (a path, bytes or a file object).

    Text chunks before the pixels (where we and ComfyUI write them) are read without decoding the
    pixels; chunks after them only from pictures of at most `max_pixels`."""
    if isinstance(source, (bytes, bytearray)):
        import io
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            if image.format != "PNG":
                raise WorkflowFormatError(f"not a PNG but a {image.format} image")
            text = {k: v for k, v in image.info.items() if isinstance(v, str)}
            if not any(key in text for key in KEYS) and image.width * image.height <= max_pixels:
                text = dict(image.text)
    except WorkflowFormatError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on broken files
        raise WorkflowFormatError(f"not a readable PNG: {type(exc).__name__}: {exc}") from None
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
