"""Judge a tiny-shapes model: sample the judge's prompt set, print the table, save a grid.

    python -m latentgraph.training.evaluate [--model assets/models/tiny-shapes] [--grid out.png]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from . import judge
from .shapes import Scene, caption, eval_scenes

STEPS, CFG = 20, 6.0  # the bar of issue 4: 20 Euler steps, classifier-free guidance about 6


def use_euler(*pipes) -> None:
    from diffusers import EulerDiscreteScheduler
    for pipe in pipes:
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)


def batches(scenes: list[Scene], seed: int, batch: int):
    """(captions, generators) per batch; picture i gets seed + i."""
    for i in range(0, len(scenes), batch):
        part = scenes[i:i + batch]
        yield [caption(s) for s in part], [torch.Generator().manual_seed(seed + i + j) for j in range(len(part))]


def as_uint8(images) -> list[np.ndarray]:
    return [(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in images]


def generate(pipe, scenes: list[Scene], steps: int = STEPS, cfg: float = CFG, seed: int = 0,
             batch: int = 64) -> list[np.ndarray]:
    """One picture per scene from its full caption, with Euler; seed + i for picture i."""
    use_euler(pipe)
    kw = dict(height=64, width=64) if "XL" in type(pipe).__name__ else {}
    out = []
    for prompts, gens in batches(scenes, seed, batch):
        out += as_uint8(pipe(prompt=prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens,
                             output_type="np", **kw).images)
    return out


def grid(images: list[np.ndarray], cols: int = 8, scale: int = 2) -> Image.Image:
    rows = (len(images) + cols - 1) // cols
    h, w, _ = images[0].shape
    canvas = Image.new("RGB", (cols * w * scale + (cols + 1) * 2, rows * h * scale + (rows + 1) * 2), (128, 128, 128))
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        canvas.paste(Image.fromarray(im).resize((w * scale, h * scale), Image.NEAREST),
                     (2 + c * (w * scale + 2), 2 + r * (h * scale + 2)))
    return canvas


def evaluate(pipe, scenes: list[Scene] | None = None, steps: int = STEPS, cfg: float = CFG, seed: int = 0):
    """(score dict, images, scenes) on these scenes, by default the judge's prompt set (64 prompts)."""
    scenes = scenes or eval_scenes()
    images = generate(pipe, scenes, steps, cfg, seed)
    return judge.score(images, scenes), images, scenes


def evaluate_handoff(base, refiner, n_withheld: int = 16, n_other: int = 48, steps: int = STEPS, cfg: float = CFG,
                     seed: int = 0, switch: float = 0.8, batch: int = 64):
    """The SDXL base draws the first `switch` of the steps, the refiner the rest (latents handed over)."""
    scenes = eval_scenes(n_withheld, n_other)
    use_euler(base, refiner)
    images = []
    for prompts, gens in batches(scenes, seed, batch):
        latents = base(prompt=prompts, num_inference_steps=steps, guidance_scale=cfg, generator=gens,
                       denoising_end=switch, output_type="latent", height=64, width=64).images
        images += as_uint8(refiner(prompt=prompts, image=latents, num_inference_steps=steps, guidance_scale=cfg,
                                   generator=gens, denoising_start=switch, output_type="np").images)
    return judge.score(images, scenes), images, scenes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder (default: the shipped tiny-shapes)")
    ap.add_argument("--grid", default=None, help="write a grid of the samples to this PNG")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--cfg", type=float, default=CFG)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, nargs=3, metavar=("WITHHELD", "OTHER", "SCENE_SEED"),
                    help="another prompt set: eval_scenes(WITHHELD, OTHER, seed=SCENE_SEED)")
    ap.add_argument("--seed", type=int, default=0, help="picture i gets seed + i")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .train_tiny import DEFAULT_OUT, load_pipeline
    pipe = load_pipeline(args.model or DEFAULT_OUT)
    t = time.time()
    scenes = eval_scenes(*args.prompts) if args.prompts else None
    s, images, scenes = evaluate(pipe, scenes, args.steps, args.cfg, args.seed)
    print(f"{len(images)} prompts, {args.steps} Euler steps, cfg {args.cfg}, {time.time() - t:.1f} s")
    print(judge.table(s))
    if args.grid:
        grid(images).save(args.grid)
        print("grid:", args.grid)


if __name__ == "__main__":
    main()
