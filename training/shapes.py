"""Procedural training pictures for the tiny-shapes model (issue 4).

A 64x64 RGB picture: a solid background and one filled shape (circle, square, or triangle
with its apex up), described by a caption such as
"a large red circle on a blue background, at the left".
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 16, "large": 32}  # side of the bounding box, px
POSITIONS = {  # centre of the bounding box, px (x, y)
    "center": (32, 32),
    "left": (20, 32),
    "right": (44, 32),
    "top": (32, 20),
    "bottom": (32, 44),
}
JITTER = 3  # the centre moves by at most this many px in x and in y
# Never drawn in training: the model must compose these from words it learnt elsewhere.
WITHHELD = frozenset({("purple", "triangle"), ("orange", "circle"), ("green", "square"), ("white", "triangle")})

# Every word of every caption; the tokenizer makes each of them a single token.
VOCAB_WORDS = (["a", "on", "background", ",", "at", "the"] + list(SIZES) + list(COLOURS)
               + list(SHAPES) + list(POSITIONS))

SUPERSAMPLE = 4  # draw at 4x and box-filter down: anti-aliased edges


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    background: str
    size: str
    position: str
    dx: int = 0  # jitter of the centre, px
    dy: int = 0

    @property
    def centre(self) -> tuple[int, int]:
        x, y = POSITIONS[self.position]
        return x + self.dx, y + self.dy

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels, x1/y1 exclusive."""
        (x, y), h = self.centre, SIZES[self.size] // 2
        return x - h, y - h, x + h, y + h


def render(scene: Scene) -> Image.Image:
    s = SUPERSAMPLE
    img = Image.new("RGB", (IMAGE_SIZE * s, IMAGE_SIZE * s), COLOURS[scene.background])
    draw = ImageDraw.Draw(img)
    x0, y0, x1, y1 = (v * s for v in scene.bbox)
    fill = COLOURS[scene.colour]
    if scene.shape == "circle":
        draw.ellipse((x0, y0, x1 - 1, y1 - 1), fill=fill)
    elif scene.shape == "square":
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=fill)
    else:  # apex up: the apex at the top edge's middle, the base along the bottom edge
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    return img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)


def caption(scene: Scene, size: bool = True, background: bool = True, position: bool = True) -> str:
    """The full caption, or one with the size, the background and/or the position left out."""
    words = ["a"] + ([scene.size] if size else []) + [scene.colour, scene.shape]
    text = " ".join(words)
    if background:
        text += f" on a {scene.background} background"
    if position:
        text += f", at the {scene.position}"
    return text


def parse_caption(text: str) -> dict:
    """The attributes a caption names (a key is missing where the caption leaves it out)."""
    words = text.replace(",", " ").split()
    out = {}
    for i, w in enumerate(words):
        if w in SIZES:
            out["size"] = w
        elif w in SHAPES:
            out["shape"] = w
        elif w in POSITIONS:
            out["position"] = w
        elif w in COLOURS:
            # a colour followed by "background" is the background's, else the shape's
            key = "background" if i + 1 < len(words) and words[i + 1] == "background" else "colour"
            out[key] = w
    return out


def random_scene(rng: random.Random, allow_withheld: bool = False) -> Scene:
    while True:
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        if allow_withheld or (colour, shape) not in WITHHELD:
            break
    background = rng.choice([c for c in COLOURS if c != colour])
    return Scene(shape, colour, background, rng.choice(list(SIZES)), rng.choice(list(POSITIONS)),
                 rng.randint(-JITTER, JITTER), rng.randint(-JITTER, JITTER))


def random_caption(scene: Scene, rng: random.Random, p_empty: float = 0.1, p_drop: float = 0.15) -> str:
    """Training caption: empty ~10% of the time (for classifier-free guidance); otherwise the full
    caption most of the time, each of size / background / position left out with p_drop."""
    if rng.random() < p_empty:
        return ""
    return caption(scene, *(rng.random() >= p_drop for _ in range(3)))


def training_scenes(n: int, seed: int) -> list[Scene]:
    """n random scenes without the withheld colour/shape pairs."""
    rng = random.Random(seed)
    return [random_scene(rng) for _ in range(n)]


def eval_scenes(n_withheld: int = 16, n_other: int = 48, seed: int = 1234) -> list[Scene]:
    """The judge's prompt set: every withheld pair n_withheld/4 times plus n_other seen pairs,
    all with full captions (attributes otherwise random). Jitter is irrelevant for prompts."""
    rng = random.Random(seed)
    out = []
    pairs = sorted(WITHHELD)
    for i in range(n_withheld):
        colour, shape = pairs[i % len(pairs)]
        background = rng.choice([c for c in COLOURS if c != colour])
        out.append(Scene(shape, colour, background, rng.choice(list(SIZES)), rng.choice(list(POSITIONS))))
    while len(out) < n_withheld + n_other:
        s = random_scene(rng)
        out.append(Scene(s.shape, s.colour, s.background, s.size, s.position))
    return out


def to_array(images: list[Image.Image]) -> np.ndarray:
    """uint8 array (N, 64, 64, 3)."""
    return np.stack([np.asarray(im, dtype=np.uint8) for im in images])
