"""The pixel judge of tiny-shapes pictures (issue 4)."""
import random

import numpy as np
from PIL import Image, ImageFilter

from latentgraph.training import judge, shapes
from latentgraph.training.shapes import COLOURS, Scene


def _scenes(n, seed=0):
    rng = random.Random(seed)
    return [shapes.random_scene(rng, allow_withheld=True) for _ in range(n)]


def test_judge_reads_every_rendered_picture_right():
    scenes = _scenes(600)
    s = judge.score([shapes.render(sc) for sc in scenes], scenes)
    for k in judge.ATTRIBUTES + ("all",):
        assert s[k] == 1.0, (k, s)


def test_judge_tolerates_blur_and_noise():
    scenes = _scenes(200, seed=1)
    rng = np.random.default_rng(0)
    imgs = []
    for sc in scenes:
        im = shapes.render(sc).filter(ImageFilter.GaussianBlur(0.8))
        px = np.asarray(im).astype(float) + rng.normal(0, 8, (64, 64, 3))
        imgs.append(Image.fromarray(np.clip(px, 0, 255).astype(np.uint8)))
    s = judge.score(imgs, scenes)
    assert min(s[k] for k in judge.ATTRIBUTES) >= 0.97, s


def test_judge_says_wrong_when_wrong():
    sc = Scene("circle", "red", "blue", "large", "left")
    im = shapes.render(sc)
    assert all(judge.verdict(im, sc).values())
    other = Scene("triangle", "yellow", "black", "small", "bottom")
    v = judge.verdict(im, other)
    assert not any(v.values()), v
    # one attribute at a time
    for field, value in [("shape", "square"), ("colour", "green"), ("background", "white"),
                         ("size", "small"), ("position", "right")]:
        wrong = Scene(**{**sc.__dict__, field: value})
        v = judge.verdict(im, wrong)
        assert v == {k: k != field for k in judge.ATTRIBUTES}, (field, v)


def test_judge_reads_a_caption_and_skips_what_it_leaves_out():
    im = shapes.render(Scene("square", "green", "purple", "small", "top"))
    assert judge.verdict(im, "a green square, at the top") == {"colour": True, "shape": True, "position": True}


def test_blank_picture_has_no_shape():
    im = Image.new("RGB", (64, 64), COLOURS["white"])
    r = judge.read(im)
    assert r["background"] == "white" and r["shape"] is None
    assert not judge.verdict(im, Scene("circle", "red", "white", "small", "center"))["shape"]


def test_score_and_table_report_withheld_pairs():
    scenes = shapes.eval_scenes()
    s = judge.score([shapes.render(sc) for sc in scenes], scenes)
    assert s["n"] == len(scenes) and s["withheld_n"] == 16 and s["withheld_all"] == 1.0
    t = judge.table(s)
    assert "withheld pairs" in t and "100%" in t
