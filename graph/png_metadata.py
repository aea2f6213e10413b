"""Workflows embedded in PNG text chunks, so that a saved image can be reopened as its workflow."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

# "workflow" holds our format (or, in ComfyUI's PNGs, its UI format); ComfyUI also writes "prompt".
KEYS = ("workflow", "prompt")


def png_info(workflow: dict) -> PngInfo:
    info = PngInfo()
    info.add_text("workflow", json.dumps(workflow, separators=(",", ":")))
    return info


def workflow_from_png(source) -> dict:
    """The workflow embedded in a PNG (a path, bytes or a file object)."""
    from latentgraph.graph.workflow import WorkflowFormatError

    if isinstance(source, (bytes, bytearray)):
        import io
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            text = dict(getattr(image, "text", {}) or image.info)
    except OSError as exc:
        raise WorkflowFormatError(f"not a readable PNG: {exc}") from None
    for key in KEYS:
        if isinstance(text.get(key), str):
            try:
                return json.loads(text[key])
            except json.JSONDecodeError:
                continue
    name = source.name if isinstance(source, Path) else "this PNG"
    raise WorkflowFormatError(f"{name} holds no workflow (no 'workflow' or 'prompt' text chunk)")
