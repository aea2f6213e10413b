"""Workflows embedded in PNG text chunks, so that a saved image can be reopened as its workflow.

A sweep's grid also carries the sweep (a "sweep" chunk), so that it reopens as workflow and sweep."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

# "workflow" holds our format (or, in ComfyUI's PNGs, its UI format); ComfyUI also writes "prompt".
KEYS = ("workflow", "prompt")


def png_info(workflow: dict, sweep: dict | None = None) -> PngInfo:
    info = PngInfo()
    info.add_text("workflow", json.dumps(workflow, separators=(",", ":")))
    if sweep is not None:
        info.add_text("sweep", json.dumps(sweep, separators=(",", ":")))
    return info


def _text_chunks(source) -> dict:
    from latentgraph.graph.workflow import WorkflowFormatError

    if isinstance(source, (bytes, bytearray)):
        import io
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            return dict(getattr(image, "text", {}) or image.info)
    except OSError as exc:
        raise WorkflowFormatError(f"not a readable PNG: {exc}") from None


def sweep_from_png(source) -> dict | None:
    """The sweep embedded in a sweep's grid PNG (a path, bytes or a file object), or None."""
    text = _text_chunks(source).get("sweep")
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


def workflow_from_png(source) -> dict:
    """The workflow embedded in a PNG (a path, bytes or a file object)."""
    from latentgraph.graph.workflow import WorkflowFormatError

    text = _text_chunks(source)
    for key in KEYS:
        if isinstance(text.get(key), str):
            try:
                return json.loads(text[key])
            except json.JSONDecodeError:
                continue
    name = source.name if isinstance(source, Path) else "this PNG"
    raise WorkflowFormatError(f"{name} holds no workflow (no 'workflow' or 'prompt' text chunk)")
