"""A judge that reads only pixels: what a 64x64 shapes picture shows, and whether it matches a prompt.

- background colour: the palette colour most pixels are nearest to;
- shape colour: the palette colour most of the clearly-not-background pixels are nearest to;
- shape mask: the largest connected region of pixels nearer the shape colour than the background;
- shape type: fill ratio of the mask's bounding box (square 1.0, circle 0.785, triangle 0.5);
- size: bounding-box side (small 16 px, large 32 px); position: nearest named bounding-box centre.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .shapes import COLOURS, POSITIONS, WITHHELD, Scene, parse_caption

ATTRIBUTES = ("background", "colour", "shape", "position", "size")
_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _NAMES], dtype=np.float32)


def read(image) -> dict:
    """What the picture shows: {background, colour, shape, position, size, fill, bbox};
    shape attributes are None when no shape is found."""
    px = np.asarray(image, dtype=np.float32)[..., :3]
    h, w, _ = px.shape
    dist = np.linalg.norm(px[:, :, None, :] - _PALETTE, axis=-1)  # (h, w, 8)
    label = dist.argmin(-1)
    bg = int(np.bincount(label.ravel(), minlength=len(_NAMES)).argmax())
    out = {"background": _NAMES[bg], "colour": None, "shape": None, "position": None, "size": None,
           "fill": None, "bbox": None}

    far = dist[..., bg] > 60  # clearly not background
    votes = np.bincount(label[far], minlength=len(_NAMES))
    votes[bg] = 0
    if votes.sum() < 8:
        return out
    fg = int(votes.argmax())
    out["colour"] = _NAMES[fg]

    # Split each pixel between the two colours (its projection on the bg->fg line): anti-aliased
    # edges then count half, so the area and the extent stay unbiased.
    a, b = _PALETTE[bg], _PALETTE[fg]
    t = ((px - a) @ (b - a)) / float((b - a) @ (b - a))
    regions, n = ndimage.label(t > 0.5)
    if n == 0:
        return out
    sizes = ndimage.sum_labels(np.ones_like(t), regions, index=np.arange(1, n + 1))
    mask = ndimage.binary_fill_holes(regions == (1 + int(sizes.argmax())))
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    fill = mask.sum() / float((x1 - x0) * (y1 - y0))
    out["fill"], out["bbox"] = float(fill), (int(x0), int(y0), int(x1), int(y1))
    out["shape"] = "triangle" if fill < 0.64 else "circle" if fill < 0.89 else "square"
    out["size"] = "large" if max(x1 - x0, y1 - y0) >= 24 else "small"
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out["position"] = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    return out


def verdict(image, expected) -> dict:
    """{attribute: True/False} for each attribute the expectation names (a Scene, a caption, or a
    dict of attributes); attributes it leaves out are not judged."""
    if isinstance(expected, Scene):
        expected = {"background": expected.background, "colour": expected.colour, "shape": expected.shape,
                    "position": expected.position, "size": expected.size}
    elif isinstance(expected, str):
        expected = parse_caption(expected)
    seen = read(image)
    return {k: seen[k] == expected[k] for k in ATTRIBUTES if k in expected}


def score(images, scenes: list[Scene]) -> dict:
    """Fractions right per attribute, all attributes right, and all right on withheld pairs."""
    rows = [verdict(im, sc) for im, sc in zip(images, scenes)]
    held = [r for r, sc in zip(rows, scenes) if (sc.colour, sc.shape) in WITHHELD]
    out = {k: float(np.mean([r[k] for r in rows])) for k in ATTRIBUTES}
    out["all"] = float(np.mean([all(r.values()) for r in rows]))
    out["n"] = len(rows)
    if held:
        for k in ATTRIBUTES:
            out[f"withheld_{k}"] = float(np.mean([r[k] for r in held]))
        out["withheld_all"] = float(np.mean([all(r.values()) for r in held]))
        out["withheld_n"] = len(held)
    return out


def table(s: dict) -> str:
    """A markdown table of a score() result."""
    cols = list(ATTRIBUTES) + ["all"]
    lines = ["| prompts | n | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|",
             f"| all | {s['n']} | " + " | ".join(f"{100 * s[c]:.0f}%" for c in cols) + " |"]
    if "withheld_n" in s:
        lines.append(f"| withheld pairs | {s['withheld_n']} | "
                     + " | ".join(f"{100 * s['withheld_' + c]:.0f}%" for c in cols) + " |")
    return "\n".join(lines)
