"""The tiny-shapes training pictures and captions (issue 4)."""
import random

import numpy as np

from latentgraph.training import shapes
from latentgraph.training.shapes import COLOURS, Scene


def test_picture_is_64px_rgb_with_exact_colours():
    sc = Scene("square", "red", "blue", "large", "left", dx=-3, dy=3)
    px = np.asarray(shapes.render(sc))
    assert px.shape == (64, 64, 3) and px.dtype == np.uint8
    x0, y0, x1, y1 = sc.bbox
    assert (x0, y0, x1, y1) == (1, 19, 33, 51)
    assert (px[y0:y1, x0:x1] == COLOURS["red"]).all()  # a square fills its box exactly
    outside = np.ones((64, 64), bool)
    outside[y0:y1, x0:x1] = False
    assert (px[outside] == COLOURS["blue"]).all()


def test_sizes_positions_and_jitter_stay_inside_the_picture():
    rng = random.Random(0)
    for _ in range(2000):
        sc = shapes.random_scene(rng)
        x0, y0, x1, y1 = sc.bbox
        assert 0 <= x0 and 0 <= y0 and x1 <= 64 and y1 <= 64
        assert x1 - x0 == shapes.SIZES[sc.size]
        assert abs(sc.dx) <= 3 and abs(sc.dy) <= 3
        assert sc.colour != sc.background


def test_triangle_apex_up_and_circle_area():
    tri = np.asarray(shapes.render(Scene("triangle", "white", "black", "large", "center")))
    is_fg = (tri == COLOURS["white"]).all(-1)
    widths = is_fg[16:48].sum(1)
    assert widths[2] < widths[16] < widths[29]  # narrow at the top, wide at the base
    circ = np.asarray(shapes.render(Scene("circle", "white", "black", "large", "center"))).astype(float)
    cover = np.abs(circ - COLOURS["black"]).sum(-1) / np.abs(np.subtract(COLOURS["white"], COLOURS["black"])).sum()
    assert abs(cover.sum() / 32**2 - np.pi / 4) < 0.01


def test_training_data_never_shows_withheld_pairs():
    scenes = shapes.training_scenes(5000, seed=1)
    pairs = {(s.colour, s.shape) for s in scenes}
    assert not pairs & shapes.WITHHELD
    assert len(pairs) == 24 - 4  # every other pair is seen
    assert len(shapes.WITHHELD) == 4


def test_captions_full_and_partial():
    sc = Scene("circle", "red", "blue", "large", "left")
    assert shapes.caption(sc) == "a large red circle on a blue background, at the left"
    assert shapes.caption(sc, size=False) == "a red circle on a blue background, at the left"
    assert shapes.caption(sc, background=False) == "a large red circle, at the left"
    assert shapes.caption(sc, position=False) == "a large red circle on a blue background"
    assert shapes.parse_caption(shapes.caption(sc)) == {"size": "large", "colour": "red", "shape": "circle",
                                                        "background": "blue", "position": "left"}
    assert shapes.parse_caption("a red circle, at the left") == {"colour": "red", "shape": "circle",
                                                                 "position": "left"}


def test_random_captions_mix():
    rng = random.Random(0)
    sc = Scene("circle", "red", "blue", "small", "top")
    caps = [shapes.random_caption(sc, rng) for _ in range(4000)]
    empty = caps.count("") / len(caps)
    full = caps.count(shapes.caption(sc)) / len(caps)
    assert 0.07 < empty < 0.13
    assert full > 0.5  # full captions most of the time
    assert all("red circle" in c for c in caps if c)


def test_eval_set_has_withheld_pairs_and_48_plus_prompts():
    scenes = shapes.eval_scenes()
    assert len(scenes) >= 48
    held = [s for s in scenes if (s.colour, s.shape) in shapes.WITHHELD]
    assert {(s.colour, s.shape) for s in held} == set(shapes.WITHHELD)
    assert len(held) >= 8


def test_tokenizer_makes_each_caption_word_one_token():
    from latentgraph.training.tiny_model import build_tokenizer
    tok = build_tokenizer()
    text = "a large red circle on a blue background, at the left"
    ids = tok(text).input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) == 2 + len(text.replace(",", " ,").split())
    for w in shapes.VOCAB_WORDS:
        assert len(tok(w).input_ids) == 3, w
    assert tok.model_max_length == 77


def test_coarse_training_noise_adds_low_frequencies_and_keeps_the_white_part():
    import torch

    from latentgraph.training.train_tiny import training_noise
    shape = (64, 4, 16, 16)
    white = training_noise(shape, torch.Generator().manual_seed(0), 0.0)
    coarse = training_noise(shape, torch.Generator().manual_seed(0), 0.5)
    assert abs(white.std().item() - 1) < 0.02

    def block_means(x):  # the layout scale: means over 4x4 latent pixels
        return torch.nn.functional.avg_pool2d(x, 4)

    def fine(x):  # neighbour differences: edges, where the upsampled coarse noise is nearly flat
        return x[..., 1:] - x[..., :-1]

    assert block_means(coarse).var() > 5 * block_means(white).var()  # about 10x at amplitude 0.5
    assert abs(fine(coarse).var().item() / fine(white).var().item() - 1) < 0.15
