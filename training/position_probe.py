"""Measurements behind docs/tiny-model.md's account of why tiny-shapes once ignored position words.

    python -m latentgraph.training.position_probe effect [--model DIR]
    python -m latentgraph.training.position_probe direct [--steps 1000] [--fixed-colours] [--position-only]

`effect`: how much the model's prediction of the clean latent moves when "left" becomes "right",
relative to when "red" becomes "green" (same noise, same timestep). Near 0: the words are unused.

`direct`: a control experiment. A fresh UNet of the shipped architecture, with the shipped text
encoder and VAE, learns to output the clean latent straight from pure noise and the caption (no
noise schedule, no epsilon parametrisation). Every 100 steps it prints how far "left" -> "right"
moves its output, as a share of how far the true clean latents differ (1 = fully follows the
word), so one sees whether, and after how many steps, the architecture learns to place the shape.
"""
from __future__ import annotations

import argparse
import dataclasses
import random

import torch

from . import shapes
from . import tiny_model as tm
from .train_tiny import images_to_tensor, position_loss, tokenize

PAIR = ("a large red square on a blue background, at the left",
        "a large red square on a blue background, at the right",
        "a large green square on a blue background, at the left")


def effect_ratio(x0: torch.Tensor) -> float:
    """x0: (n, 3, ...) predictions for PAIR's captions on n noises -> |left-right| / |red-green|."""
    return float((x0[:, 0] - x0[:, 1]).norm() / (x0[:, 0] - x0[:, 2]).norm())


@torch.no_grad()
def position_effect(pipe, t: int = 999, n: int = 4, seed: int = 7, captions=PAIR) -> float:
    """effect_ratio of the clean latent that the model predicts at timestep t from white noise."""
    unet, te, tok = pipe.unet, pipe.text_encoder, pipe.tokenizer
    side = unet.config.sample_size
    x = torch.randn(n, 4, side, side, generator=torch.Generator().manual_seed(seed)).repeat_interleave(3, 0)
    hidden = te(tokenize(tok, list(captions), "cpu"))[0].repeat(n, 1, 1)
    a = tm.train_scheduler().alphas_cumprod[t]
    eps = unet(x, torch.full((len(x),), t), hidden).sample
    x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
    return effect_ratio(x0.view(n, 3, *x0.shape[1:]))


def direct(pipe, steps: int = 1000, batch: int = 32, lr: float = 1e-3, fixed_colours: bool = False,
           position_only: bool = False, every: int = 100, n_pictures: int = 4096, seed: int = 0) -> list[tuple]:
    """Train a fresh UNet to map (pure noise, caption) to the clean latent; [(step, loss, moved)].
    The text encoder given in pipe trains too (in place); the trained UNet replaces pipe.unet."""
    vae, te, tok = pipe.vae, pipe.text_encoder, pipe.tokenizer
    torch.manual_seed(seed)
    side = pipe.unet.config.sample_size
    unet = tm.build_unet(channels=tuple(pipe.unet.config.block_out_channels), sample_size=side)
    scenes = shapes.training_scenes(n_pictures, seed=seed + 1)
    if fixed_colours:  # one colour pair: the position word alone then tells where the dark pixels are
        scenes = [dataclasses.replace(s, colour="black", background="white") for s in scenes]
    with torch.no_grad():
        lat = torch.cat([vae.encode(images_to_tensor([shapes.render(s) for s in scenes[i:i + 256]])).latent_dist.mean
                         for i in range(0, len(scenes), 256)]) * vae.config.scaling_factor
    colours = ("black", "white") if fixed_colours else ("red", "blue")
    probe = [f"a large {colours[0]} square on a {colours[1]} background, at the {p}" for p in ("left", "right")]
    if position_only:
        probe = [c.split()[-1] for c in probe]
    with torch.no_grad():  # what a perfect model's two outputs would differ by
        pair = [shapes.Scene("square", *colours, "large", p) for p in ("left", "right")]
        true = vae.encode(images_to_tensor([shapes.render(s) for s in pair])).latent_dist.mean
        true_diff = float((true[0] - true[1]).norm() * vae.config.scaling_factor)
    noise = torch.randn(4, 4, side, side, generator=torch.Generator().manual_seed(7)).repeat_interleave(2, 0)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    gen, rng, t999, out = torch.Generator().manual_seed(seed), random.Random(seed), torch.tensor(999), []
    for step in range(1, steps + 1):
        unet.train(), te.train()
        idx = torch.randint(0, len(scenes), (batch,), generator=gen).tolist()
        caps = [scenes[i].position if position_only else shapes.random_caption(scenes[i], rng) for i in idx]
        loss = position_loss(unet, te, tok, lat[idx], caps, gen, "cpu")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % every == 0 or step == steps:
            unet.eval(), te.eval()
            with torch.no_grad():
                hidden = te(tokenize(tok, probe, "cpu"))[0].repeat(4, 1, 1)
                pred = unet(noise, t999, hidden).sample.view(4, 2, 4, side, side)
            moved = float((pred[:, 0] - pred[:, 1]).flatten(1).norm(dim=1).mean()) / true_diff
            out.append((step, loss.item(), moved))
            print(f"step {step}: loss {loss:.3f}, left->right moves the output {moved:.2f} of the true change",
                  flush=True)
    pipe.unet = unet
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("effect", "direct"))
    ap.add_argument("--model", default=None, help="model folder (default: the shipped tiny-shapes)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--fixed-colours", action="store_true", help="direct: every picture black on white")
    ap.add_argument("--position-only", action="store_true", help="direct: the caption is the position word alone")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", default=None, help="direct: save the model (trained UNet and text encoder) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from .train_tiny import DEFAULT_OUT, load_pipeline
    pipe = load_pipeline(args.model or DEFAULT_OUT)
    if args.what == "effect":
        for t in (999, 800, 600):
            print(f"t={t}: left/right vs red/green {position_effect(pipe, t):.3f}")
    else:
        direct(pipe, args.steps, fixed_colours=args.fixed_colours, position_only=args.position_only)
        if args.save:
            pipe.register_modules(unet=pipe.unet)
            pipe.save_pretrained(args.save, safe_serialization=True)


if __name__ == "__main__":
    main()
