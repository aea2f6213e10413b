"""Train the tiny-shapes model from a fixed seed (issue 4): VAE first, then UNet + text encoder.

    python -m latentgraph.training.train_tiny --run runs/tiny [--resume] [--device cuda]

Everything random comes from --seed, so the same command rebuilds the same model (bit for bit at
the same thread count). A checkpoint is written to the run folder every --ckpt-every steps;
--resume goes on from it. The run folder also gets log.jsonl (losses, judge figures).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import judge, shapes
from . import tiny_model as tm

DEFAULT_OUT = str(Path(__file__).resolve().parent.parent / "assets" / "models" / "tiny-shapes")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/tiny-shapes", help="run folder: checkpoint, log, samples")
    ap.add_argument("--out", default=DEFAULT_OUT, help="where the finished model is saved")
    ap.add_argument("--resume", action="store_true", help="go on from the run folder's checkpoint")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--vae-channels", default="32,64,64", help="AutoencoderKL block_out_channels")
    ap.add_argument("--unet-channels", default="32,64,128", help="UNet2DConditionModel block_out_channels")
    ap.add_argument("--vae-steps", type=int, default=1500)
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--decoder-steps", type=int, default=0,
                    help="then fine-tune the VAE decoder alone (latents unchanged; e.g. for an --init-from model)")
    ap.add_argument("--decoder-lr", type=float, default=1e-3)
    ap.add_argument("--cache", type=int, default=20000, help="pictures whose latents the UNet trains on")
    ap.add_argument("--unet-steps", type=int, default=7000)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=1e-3)
    ap.add_argument("--position-steps", type=int, default=1000,
                    help="steps of the position teacher (SD1.5 type; 0: no teacher, no --distill)")
    ap.add_argument("--teacher-from", default=None,
                    help="take the position teacher from this run folder's checkpoint instead of training one")
    ap.add_argument("--distill", type=float, default=0.5,
                    help="share of each epsilon batch given pure noise and taught the position teacher's clean latent")
    ap.add_argument("--distill-t-min", type=int, default=900, help="those samples' timesteps: this to 999")
    ap.add_argument("--min-snr", type=float, default=5.0, help="min-SNR-gamma loss weighting")
    ap.add_argument("--snr-floor", type=float, default=0.0,
                    help="floor of the x0-space loss weight (lifts the high-noise steps that decide layout)")
    ap.add_argument("--high-noise", type=float, default=0.0,
                    help="fraction of timesteps drawn from the noisiest 40%% (t >= 600) instead of uniformly")
    ap.add_argument("--coarse-noise", type=float, default=0.0,
                    help="add coarse (2x2 to whole-latent) noise of this amplitude to the training noise")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay (warmed up) of UNet + text encoder")
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=2000, help="UNet steps between judge evaluations")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after a checkpoint) after this long")
    ap.add_argument("--stop-after-vae", action="store_true", help="stop once the VAE is trained")
    ap.add_argument("--init-from", default=None,
                    help="start from this saved tiny-shapes model (VAE kept, UNet + text encoder fine-tuned)")
    ap.add_argument("--xl", action="store_true",
                    help="train the SDXL-type pair (tiny-shapes-xl base + refiner) instead of the SD1.5-type model")
    ap.add_argument("--xl-out", default=DEFAULT_OUT + "-xl", help="where --xl saves the base (refiner: +'-refiner')")
    ap.add_argument("--refiner-steps", type=int, default=600)
    ap.add_argument("--refiner-t-max", type=int, default=400, help="the refiner learns timesteps below this")
    ap.add_argument("--fade-steps", type=int, default=0,
                    help="last, teach the UNet to let the prompt fade out below --fade-below, distilled from its "
                         "own frozen copy (classifier-free guidance then stops acting on the last steps)")
    ap.add_argument("--fade-below", type=int, default=180,
                    help="the prompt's weight falls linearly from 1 at this timestep to 0 at timestep 0 "
                         "(0: no fall, the weight is --fade-weight everywhere)")
    ap.add_argument("--fade-weight", type=float, default=1.0,
                    help="fade stage: the prompt's weight from --fade-below up; under 1 it calibrates guidance, "
                         "so that cfg s then acts as cfg s * weight did before")
    ap.add_argument("--fade-lr", type=float, default=3e-4)
    ap.add_argument("--swap-context", type=float, default=0.0,
                    help="fade stage: share of captions whose text-encoder states from the shape word on come from "
                         "the same caption with another colour (the target stays the true caption's)")
    return ap.parse_args(argv)


def log(run: Path, **row):
    with open(run / "log.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def images_to_tensor(images) -> torch.Tensor:
    return torch.from_numpy(shapes.to_array(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


def tensor_to_images(x: torch.Tensor) -> list[np.ndarray]:
    return list(((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def judge_vae(vae, device, n: int = 256) -> dict:
    """Judge the VAE's reconstructions of n pictures (withheld pairs included: none was trained on)."""
    rng = random.Random(999)
    scenes = [shapes.random_scene(rng, allow_withheld=True) for _ in range(n)]
    with torch.no_grad(), torch.autocast(device.split(":")[0], torch.bfloat16):
        x = images_to_tensor([shapes.render(s) for s in scenes]).to(device)
        rec = vae.decode(vae.encode(x).latent_dist.mode()).sample
    return judge.score(tensor_to_images(rec), scenes)


def build_pipeline(c: dict):
    from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline(vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                   unet=c["unet"], scheduler=tm.shipped_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


def load_pipeline(folder: str, device: str = "cpu"):
    from diffusers import StableDiffusionPipeline
    return StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, torch_dtype=torch.float32).to(device)


def save_state(path: Path, state: dict):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: an interrupted save leaves the previous checkpoint intact


def rng_state(rng: random.Random, gen: torch.Generator) -> dict:
    return {"python": rng.getstate(), "torch": gen.get_state()}


EDGE_WEIGHT = 10.0


def reconstruction_loss(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MSE + L1 (L1 keeps edges sharp where MSE alone blurs them), with the pixels at an edge (where
    the picture differs from its 3x3 mean) weighing EDGE_WEIGHT more: most pixels are flat
    background, and without it a small triangle decoded with a blunt apex (the judge's fill
    ratio 0.61 against the picture's 0.53, often read as a circle; docs/tiny-model.md)."""
    edge = ((x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).abs().sum(1, keepdim=True) > 0.02).float()
    w = 1 + EDGE_WEIGHT * edge
    return ((rec - x) ** 2 * w).mean() + 0.5 * ((rec - x).abs() * w).mean()


def train_vae(args, c, run: Path, state: dict | None, rng, gen, deadline, decoder_only: bool = False):
    """The VAE stage; decoder_only (--decoder-steps): the decoder alone learns, the encoder frozen, so
    that the latents, and a UNet trained on them, stay valid."""
    device, name = args.device, "decoder" if decoder_only else "vae"
    steps, lr = (args.decoder_steps, args.decoder_lr) if decoder_only else (args.vae_steps, args.vae_lr)
    vae = c["vae"].to(device).train()
    params = list(vae.parameters())
    if decoder_only:
        vae.requires_grad_(False)
        params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
        for p in params:
            p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = cosine(opt, 50 if decoder_only else 100, steps)
    step = 0
    if state:
        opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        step = state["step"]
    bar = tqdm(range(step, steps), initial=step, total=steps, desc=name, dynamic_ncols=True)
    for step in bar:
        x = images_to_tensor([shapes.render(shapes.random_scene(rng)) for _ in range(args.vae_batch)]).to(device)
        with torch.autocast(device.split(":")[0], torch.bfloat16):
            with torch.set_grad_enabled(not decoder_only):
                post = vae.encode(x).latent_dist
                z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
            rec = vae.decode(z).sample.float()
        loss = reconstruction_loss(rec, x)
        if not decoder_only:  # the KL term only keeps latents bounded
            loss = loss + 1e-6 * post.kl().mean() / x[0].numel()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(), sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 10 == 0:
            log(run, stage=name, step=step, loss=round(loss.item(), 5), lr=sched.get_last_lr()[0], t=time.time())
        done = step + 1
        if done % args.ckpt_every == 0 or done == steps or time.time() > deadline:
            s = judge_vae(vae, device)
            log(run, stage=name, step=done, judge=s)
            tqdm.write(f"{name} step {done}: reconstructions\n{judge.table(s)}")
            save_state(run / "checkpoint.pt", {"stage": name, "step": done, "models": models_state(c),
                                               "opt": opt.state_dict(), "sched": sched.state_dict(),
                                               "rng": rng_state(rng, gen), "args": vars(args)})
            if time.time() > deadline and done < steps:
                return False
    vae.eval()  # main() freezes it for the stages after
    return True


def cosine(opt, warmup: int, total: int):
    from diffusers.optimization import get_cosine_schedule_with_warmup
    return get_cosine_schedule_with_warmup(opt, warmup, total)


def cache_latents(args, c, run: Path):
    """Latent mean/std of args.cache pictures (no withheld pair), and the VAE's scaling factor
    (1 / std of the latents, as SD's 0.18215 was chosen)."""
    path = run / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)  # holds Scene objects
    scenes = shapes.training_scenes(args.cache, seed=args.seed + 1)
    vae, means, stds = c["vae"].to(args.device), [], []  # a model from --init-from is still on the CPU
    with torch.no_grad(), torch.autocast(args.device.split(":")[0], torch.bfloat16):
        for i in tqdm(range(0, len(scenes), 256), desc="latents", dynamic_ncols=True):
            x = images_to_tensor([shapes.render(s) for s in scenes[i:i + 256]]).to(args.device)
            post = vae.encode(x).latent_dist
            means.append(post.mean.float().cpu()), stds.append(post.std.float().cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    # A VAE taken over from --init-from keeps its scaling factor: its UNet learnt latents at that scale.
    sf = c["vae"].config.scaling_factor if args.init_from else float(1 / mean.std())
    cache = {"mean": mean, "std": std, "scenes": scenes, "scaling_factor": sf}
    torch.save(cache, path)
    return cache


def pretrain_position(args, c, run: Path, state: dict | None, rng, gen, deadline) -> bool:
    """The position teacher: a fresh UNet, with a copy of the text encoder, learns to output the clean
    latent from pure noise and the caption alone. With SD's schedule the noisy latent still shows
    the layout at every training timestep, so the epsilon objective alone never makes the model
    read position words; here nothing but the words tells where the shape is. A fresh UNet of this
    size learns it after a plateau of about 500 steps (docs/tiny-model.md). The epsilon stage then
    learns it from this teacher (--distill)."""
    device, unet, te = args.device, c["position_unet"], c["position_te"]
    if state is None:  # the teacher reads captions as the model's own encoder does at this point
        te.load_state_dict(c["text_encoder"].state_dict())
    cache = cache_latents(args, c, run)
    mean, scenes, sf = cache["mean"], cache["scenes"], cache["scaling_factor"]
    unet.to(device).train().requires_grad_(True), te.to(device).train().requires_grad_(True)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=1e-2)
    step = 0
    if state:
        opt.load_state_dict(state["opt"])
        step = state["step"]
    bar = tqdm(range(step, args.position_steps), initial=step, total=args.position_steps, desc="position",
               dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, len(scenes), (args.unet_batch,), generator=gen)
        target = (mean[idx].float() * sf).to(device)
        captions = [shapes.random_caption(scenes[i], rng) for i in idx.tolist()]
        loss = position_loss(unet, te, c["tokenizer"], target, captions, gen, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 10 == 0:
            log(run, stage="position", step=step, loss=round(loss.item(), 5), t=time.time())
        done = step + 1
        if done % args.ckpt_every == 0 or done == args.position_steps or time.time() > deadline:
            save_state(run / "checkpoint.pt", {"stage": "position", "step": done, "models": models_state(c),
                                               "opt": opt.state_dict(), "rng": rng_state(rng, gen),
                                               "args": vars(args)})
            if time.time() > deadline and done < args.position_steps:
                return False
    return True


def position_loss(unet, te, tok, target, captions, gen, device):
    """Position pretraining's objective: the clean latent `target` from pure noise and the captions."""
    noise = torch.randn(target.shape, generator=gen).to(device)
    return F.mse_loss(predict_clean(unet, te, tok, noise, captions).float(), target)


def predict_clean(unet, te, tok, noise, captions):
    """The position teacher's output: the clean latent from pure noise and the captions (at t = 999)."""
    t = torch.full((len(noise),), 999, device=noise.device)
    return unet(noise, t, te(tokenize(tok, captions, noise.device))[0]).sample


def tokenize(tok, captions, device):
    return tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
               return_tensors="pt").input_ids.to(device)


class Stage:
    """One denoiser to train: its UNet, what trains with it, how captions condition it."""

    def __init__(self, name, unet, modules, encode, steps, t_min=0, t_max=1000, evaluate=None, teacher=None,
                 target=None, lr=None, focus=None, perturb=None):
        self.name, self.unet, self.modules, self.encode = name, unet, modules, encode
        self.steps, self.t_min, self.t_max, self.evaluate = steps, t_min, t_max, evaluate
        self.teacher = teacher  # (captions, pure noise) -> clean latent, for --distill
        self.target = target  # (noisy latents, t, captions, hidden) -> the epsilon to learn instead of the noise
        self.lr = lr
        self.focus = focus  # half of each batch at timesteps below this
        self.perturb = perturb  # (captions, states, rng) -> the states the UNet sees; the target keeps its own


def sd_stage(args, c) -> Stage:
    def encode(captions, device):
        return c["text_encoder"](tokenize(c["tokenizer"], captions, device))[0], None

    def teacher(captions, noise):
        return predict_clean(c["position_unet"], c["position_te"], c["tokenizer"], noise, captions)
    return Stage("unet", c["unet"], [c["unet"], c["text_encoder"]], encode, args.unet_steps,
                 evaluate=lambda: evaluate_pipe(build_pipeline(c)),
                 teacher=teacher if args.distill > 0 and args.position_steps > 0 else None)


def fade_stage(args, c) -> Stage:
    """Guidance limited to an interval (Kynkaanniemi et al. 2024), built into the weights. Classifier-free
    guidance on the last, least noisy steps only sharpens what the prompt already placed, and at cfg 6 it
    overshoots: corners of small squares and tips of triangles come out rounded. Here the UNet learns,
    from a frozen copy of itself, to give with a prompt what it gives without one on those steps
    (ramped: the prompt's weight falls linearly from 1 at --fade-below to 0), so any sampler's cfg
    stops acting there; the text encoder and the noisier steps stay as they were. With --fade-weight K
    under 1 the prompt's weight is K from --fade-below up (everywhere with --fade-below 0): the model's
    guidance is calibrated, cfg s then acting as cfg s * K did (the shipped model was over-guided at 6)."""
    sd = sd_stage(args, c)
    teacher, empties = c["fade_teacher"], {}

    def target(x_t, t, captions, hidden):
        if len(captions) not in empties:  # the text encoder is frozen here: encode the empty caption once
            empties[len(captions)] = sd.encode([""] * len(captions), x_t.device)[0]
        empty = empties[len(captions)]
        cond, uncond = teacher(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([hidden, empty])).sample.chunk(2)
        ramp = (t.float() / args.fade_below).clamp(0, 1) if args.fade_below > 0 else torch.ones_like(t.float())
        weight = args.fade_weight * ramp.view(-1, 1, 1, 1)
        return uncond + weight * (cond - uncond)

    def swap_context(captions, hidden, rng):
        """The text encoder is causal: the state of "triangle" in "a purple triangle" depends on "purple",
        a context that a withheld pair never had in training, and the UNet learnt to read the shape from
        states that also carry the colour. Here, for a share of the captions, every state from the shape
        word on comes from the same caption with another colour (one allowed with that shape and unlike
        the background), while the target stays the true caption's: the UNet learns to take the shape
        from those states whatever colour they carry, and the colour from the colour word."""
        rows, swapped = [], []
        for i, caption in enumerate(captions):
            words = shapes.parse_caption(caption)
            if "colour" not in words or rng.random() >= args.swap_context:
                continue
            colour, shape = words["colour"], words["shape"]
            others = [k for k in shapes.COLOURS
                      if k not in (colour, words.get("background")) and (k, shape) not in shapes.WITHHELD]
            rows.append(i)
            swapped.append(caption.replace(f"{colour} {shape}", f"{rng.choice(others)} {shape}", 1))
        if not rows:
            return hidden
        ids = tokenize(c["tokenizer"], [captions[i] for i in rows], hidden.device)
        other_ids = tokenize(c["tokenizer"], swapped, hidden.device)
        other = sd.encode(swapped, hidden.device)[0]
        out = hidden.clone()
        for j, i in enumerate(rows):
            shape_word = int((ids[j] != other_ids[j]).nonzero()[0]) + 1  # the token after the colour word
            out[i, shape_word:] = other[j, shape_word:]
        return out
    perturb = swap_context if args.swap_context > 0 else None
    return Stage("fade", c["unet"], [c["unet"]], sd.encode, args.fade_steps, evaluate=sd.evaluate, target=target,
                 lr=args.fade_lr, focus=args.fade_below or None, perturb=perturb)


def xl_stage(args, c, refiner: bool = False) -> Stage:
    """SDXL conditioning as its pipelines build it: the penultimate hidden states (both encoders
    concatenated for the base, the second alone for the refiner), the second encoder's projected
    pooled output, and the size/crop (base) or size/crop/aesthetic-score (refiner) time ids."""
    def encode(captions, device):
        n = len(captions)
        out2 = c["text_encoder_2"](tokenize(c["tokenizer_2"], captions, device), output_hidden_states=True)
        hidden, pooled = out2.hidden_states[-2], out2.text_embeds
        if refiner:  # the refiner pipeline encodes "" for the negative, with aesthetic score 2.5
            ids = torch.tensor([[64, 64, 0, 0, 6.0 if cap else 2.5] for cap in captions], device=device)
            return hidden, {"text_embeds": pooled, "time_ids": ids}
        h1 = c["text_encoder"](tokenize(c["tokenizer"], captions, device), output_hidden_states=True).hidden_states[-2]
        hidden = torch.cat([h1, hidden], -1)
        # The base pipeline (force_zeros_for_empty_prompt) uses zeros, not "" encoded, as negative.
        keep = torch.tensor([bool(cap) for cap in captions], device=device, dtype=hidden.dtype)
        hidden, pooled = hidden * keep[:, None, None], pooled * keep[:, None]
        ids = torch.tensor([[64, 64, 0, 0, 64, 64]] * n, device=device, dtype=hidden.dtype)
        return hidden, {"text_embeds": pooled, "time_ids": ids}
    if refiner:  # the base's second encoder, frozen; the refiner learns the low-noise steps only
        return Stage("refiner", c["unet_refiner"], [c["unet_refiner"]], encode, args.refiner_steps,
                     t_max=args.refiner_t_max, evaluate=lambda: evaluate_handoff(c))
    return Stage("xl", c["unet_xl"], [c["unet_xl"], c["text_encoder"], c["text_encoder_2"]], encode,
                 args.unet_steps, evaluate=lambda: evaluate_pipe(build_xl_pipelines(c)[0]))


def training_noise(shape, gen, coarse: float) -> torch.Tensor:
    """White noise, plus (coarse > 0) noise drawn at 1/2, 1/4, ... of the latent's side and upsampled:
    the coarse layout of a noisy latent then no longer tells where the shape will be, so the
    model must take position and background from the prompt. The sampler still starts from white
    noise; the target is the noise actually added, so the objective stays SD's epsilon one.
    Not renormalised: scaling the sum back to unit variance would shrink the white part and make
    the shape's edges more visible in the noisy latent, the opposite of the aim."""
    noise = torch.randn(shape, generator=gen)
    if coarse <= 0:
        return noise
    b, ch, h, w = shape
    r = 2
    while r <= h:
        low = torch.randn((b, ch, max(h // r, 1), max(w // r, 1)), generator=gen)
        noise += coarse * F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        r *= 2
    return noise


def train_unet(args, c, run: Path, state: dict | None, rng, gen, deadline, stage: Stage):
    from diffusers.training_utils import EMAModel, compute_snr
    device = args.device
    cache = cache_latents(args, c, run)
    c["vae"].register_to_config(scaling_factor=cache["scaling_factor"])
    for m in c.values():  # only this stage's modules learn
        if isinstance(m, torch.nn.Module):
            m.to(device).eval().requires_grad_(False)
    for m in stage.modules:
        m.train().requires_grad_(True)
    unet = stage.unet
    params = [p for m in stage.modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=stage.lr or args.unet_lr, weight_decay=1e-2)
    sched = cosine(opt, 200, stage.steps)
    ema = EMAModel(params, decay=args.ema, use_ema_warmup=True, power=3 / 4)
    noise_sched = tm.train_scheduler()
    alphas = noise_sched.alphas_cumprod.to(device)
    step = 0
    if state and state["stage"] == stage.name:
        opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"]), ema.load_state_dict(state["ema"])
        step = state["step"]
    ema.to(device)
    mean, std, scenes, sf = cache["mean"], cache["std"], cache["scenes"], cache["scaling_factor"]
    bar = tqdm(range(step, stage.steps), initial=step, total=stage.steps, desc=stage.name, dynamic_ncols=True)
    for step in bar:
        b = args.unet_batch
        idx = torch.randint(0, len(scenes), (b,), generator=gen)
        eps_post = torch.randn((b, *mean.shape[1:]), generator=gen)
        latents = ((mean[idx].float() + std[idx].float() * eps_post) * sf).to(device)
        noise = training_noise(latents.shape, gen, args.coarse_noise).to(device)
        t = torch.randint(stage.t_min, stage.t_max, (b,), generator=gen)
        high = torch.rand(b, generator=gen) < args.high_noise
        t_high = torch.randint(int(0.6 * stage.t_max), stage.t_max, (b,), generator=gen)
        t = torch.where(high, t_high, t)
        if stage.focus:  # half of each batch where the target differs from the model as it was
            near = torch.rand(b, generator=gen) < 0.5
            t = torch.where(near, torch.randint(0, stage.focus, (b,), generator=gen), t)
        # --distill: these samples get pure noise, with no trace of the picture, as the sampler's
        # first step does (SD's schedule always leaves some in training), so only the words can say
        # where the shape goes; their target is the position teacher's clean latent.
        pure = torch.rand(b, generator=gen) < (args.distill if stage.teacher else 0.0)
        t = torch.where(pure, torch.randint(args.distill_t_min, 1000, (b,), generator=gen), t).to(device)
        white = torch.randn(latents.shape, generator=gen).to(device)
        pure = pure.to(device)
        captions = [shapes.random_caption(scenes[i], rng) for i in idx.tolist()]
        hidden, added = stage.encode(captions, device)
        x_t = torch.where(pure.view(-1, 1, 1, 1), white, noise_sched.add_noise(latents, noise, t))
        seen = stage.perturb(captions, hidden, rng) if stage.perturb else hidden
        pred = unet(x_t, t, seen, added_cond_kwargs=added).sample.float()
        if stage.target:  # a distillation: every timestep counts alike
            with torch.no_grad():
                target = stage.target(x_t, t, captions, hidden).float()
            per_sample = F.mse_loss(pred, target, reduction="none").mean((1, 2, 3))
        else:  # The epsilon loss weighs an error in the clean picture by SNR. min-SNR-gamma caps that
            # weight for the easy low-noise steps; --snr-floor raises it for the noisiest steps.
            snr = compute_snr(noise_sched, t)
            w = torch.clamp(snr, min=args.snr_floor, max=args.min_snr) / snr
            per_sample = F.mse_loss(pred, noise, reduction="none").mean((1, 2, 3)) * w
        if pure.any():  # error of the clean latent that the prediction implies, against the teacher's
            with torch.no_grad():
                target = stage.teacher([cap for cap, p in zip(captions, pure.tolist()) if p], white[pure]).float()
            a = alphas[t[pure]].view(-1, 1, 1, 1)
            x0 = (white[pure] - (1 - a).sqrt() * pred[pure]) / a.sqrt()
            per_sample = per_sample.masked_scatter(pure, F.mse_loss(x0, target, reduction="none").mean((1, 2, 3)))
        loss = per_sample.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(), sched.step(), ema.step(params)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 10 == 0:
            extra = {"distill_loss": round(per_sample[pure].mean().item(), 5)} if pure.any() else {}
            log(run, stage=stage.name, step=step, loss=round(loss.item(), 5), lr=sched.get_last_lr()[0], t=time.time(),
                **extra)
        done = step + 1
        last = done == stage.steps
        if done % args.eval_every == 0 or last:
            s = evaluate_ema(stage, ema, params, run, done)
            tqdm.write(f"{stage.name} step {done}: EMA weights, 64 prompts, Euler 20 steps, cfg 6\n{judge.table(s)}")
        if done % args.ckpt_every == 0 or last or time.time() > deadline:
            save_state(run / "checkpoint.pt", {"stage": stage.name, "step": done, "models": models_state(c),
                                               "opt": opt.state_dict(), "sched": sched.state_dict(),
                                               "ema": ema.state_dict(), "rng": rng_state(rng, gen),
                                               "args": vars(args)})
            if time.time() > deadline and not last:
                return False
    ema.copy_to(params)  # the finished stage keeps its EMA weights
    for m in stage.modules:
        m.eval().requires_grad_(False)
    return True


def evaluate_pipe(pipe):
    from .evaluate import evaluate
    return evaluate(pipe)


def evaluate_handoff(c):
    from .evaluate import evaluate_handoff as handoff
    return handoff(*build_xl_pipelines(c))


def evaluate_ema(stage: Stage, ema, params, run: Path, step: int) -> dict:
    from .evaluate import grid
    ema.store(params)
    ema.copy_to(params)
    for m in stage.modules:
        m.eval()
    t0 = time.time()
    s, images, _ = stage.evaluate()
    grid(images).save(run / f"samples-{stage.name}-{step:05d}.png")
    ema.restore(params)
    for m in stage.modules:
        m.train()
    log(run, stage=stage.name, step=step, judge=s, eval_seconds=round(time.time() - t0, 1))
    return s


def models_state(c: dict) -> dict:
    return {k: m.state_dict() for k, m in c.items() if isinstance(m, torch.nn.Module)}


def build_components(args) -> dict:
    torch.manual_seed(args.seed)  # initial weights; SD parts first, so --xl leaves them unchanged
    tok = tm.build_tokenizer()
    ints = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    vae_channels, unet_channels = ints(args.vae_channels), ints(args.unet_channels)
    size = shapes.IMAGE_SIZE >> (len(vae_channels) - 1)  # latent side
    c = {"tokenizer": tok, "text_encoder": tm.build_text_encoder(tok), "vae": tm.build_vae(vae_channels),
         "unet": tm.build_unet(channels=unet_channels, sample_size=size)}
    if args.xl:
        c["tokenizer_2"] = tm.build_tokenizer(pad_token="!")  # as SDXL's second tokenizer
        c["text_encoder_2"] = te2 = tm.build_text_encoder_2(c["tokenizer_2"])
        width1, width2 = c["text_encoder"].config.hidden_size, te2.config.hidden_size
        c["unet_xl"] = tm.build_xl_unet(width1 + width2, 6, unet_channels, size, te2.config.projection_dim)
        c["unet_refiner"] = tm.build_xl_unet(width2, 5, unet_channels, size, te2.config.projection_dim)
    elif args.position_steps:  # the position teacher (pretrain_position)
        c["position_unet"] = tm.build_unet(channels=unet_channels, sample_size=size)
        c["position_te"] = tm.build_text_encoder(tok)
    if args.fade_steps and not args.xl:  # the UNet's frozen copy that fade_stage learns from
        c["fade_teacher"] = tm.build_unet(channels=unet_channels, sample_size=size)
    return c


def load_model(c: dict, folder: str):
    """Weights of a saved SD1.5-type tiny-shapes model into freshly built components."""
    saved = load_pipeline(folder, "cpu")
    for k in ("vae", "text_encoder", "unet"):
        c[k].load_state_dict(getattr(saved, k).state_dict())
    c["vae"].register_to_config(scaling_factor=saved.vae.config.scaling_factor)


def load_teacher(c: dict, run_folder: str):
    """The position teacher of another run (its checkpoint holds it once its position stage is done)."""
    state = torch.load(Path(run_folder) / "checkpoint.pt", weights_only=True, map_location="cpu")
    done = state["stage"] == "unet" or (state["stage"] == "position"
                                        and state["step"] >= state["args"]["position_steps"])
    if "position_unet" not in state["models"] or not done:
        raise SystemExit(f"--teacher-from {run_folder}: its checkpoint holds no finished position teacher")
    for k in ("position_unet", "position_te"):
        c[k].load_state_dict(state["models"][k])


def fp16_copy(m):
    return copy.deepcopy(m).to("cpu").half()


def fp32_copy(m):
    return copy.deepcopy(m).to("cpu").float()


def save_tokenizer_files(tok, folder: Path):
    # vocab.json + merges.txt too, for tokenizer loaders that don't read tokenizer.json
    tok.backend_tokenizer.model.save(str(folder))


def export(c: dict, out: str):
    """Save in diffusers layout, safetensors, UNet and VAE in fp16 (a few MB); diffusers loads
    them as float32 unless told otherwise. Text encoders stay float32 (under 5 MB): transformers
    would otherwise load them as float16."""
    parts = dict(c, vae=fp16_copy(c["vae"]), unet=fp16_copy(c["unet"]), text_encoder=fp32_copy(c["text_encoder"]))
    build_pipeline(parts).save_pretrained(out, safe_serialization=True)
    save_tokenizer_files(c["tokenizer"], Path(out) / "tokenizer")
    return out


def build_xl_pipelines(c: dict):
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline
    base = StableDiffusionXLPipeline(
        vae=c["vae"], text_encoder=c["text_encoder"], text_encoder_2=c["text_encoder_2"], tokenizer=c["tokenizer"],
        tokenizer_2=c["tokenizer_2"], unet=c["unet_xl"], scheduler=tm.xl_scheduler(),
        force_zeros_for_empty_prompt=True, add_watermarker=False)
    refiner = StableDiffusionXLImg2ImgPipeline(
        vae=c["vae"], text_encoder=None, text_encoder_2=c["text_encoder_2"], tokenizer=None,
        tokenizer_2=c["tokenizer_2"], unet=c["unet_refiner"], scheduler=tm.xl_scheduler(),
        requires_aesthetics_score=True, force_zeros_for_empty_prompt=False, add_watermarker=False)
    return base, refiner


def export_xl(c: dict, out: str, out_refiner: str):
    parts = dict(c, vae=fp16_copy(c["vae"]), unet_xl=fp16_copy(c["unet_xl"]),
                 unet_refiner=fp16_copy(c["unet_refiner"]), text_encoder=fp32_copy(c["text_encoder"]),
                 text_encoder_2=fp32_copy(c["text_encoder_2"]))
    base, refiner = build_xl_pipelines(parts)
    base.save_pretrained(out, safe_serialization=True)
    refiner.save_pretrained(out_refiner, safe_serialization=True)
    for folder, names in ((out, ("tokenizer", "tokenizer_2")), (out_refiner, ("tokenizer_2",))):
        for name in names:
            save_tokenizer_files(c[name], Path(folder) / name)


def main(argv=None):
    args = parse_args(argv)
    if args.fade_steps and args.xl:
        raise SystemExit("--fade-steps is for the SD1.5-type model, not --xl")
    if args.swap_context and not args.fade_steps:
        raise SystemExit("--swap-context acts in the fade stage: give --fade-steps too")
    if args.teacher_from and (args.xl or not args.position_steps or (args.distill <= 0 and args.init_from)):
        # the SD1.5-type teacher serves the --distill share and, from scratch, the UNet's starting point
        raise SystemExit("--teacher-from takes effect only with --position-steps > 0, without --xl, and "
                         "(with --init-from) --distill > 0")
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # as on CPU
    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    deadline = time.time() + args.max_minutes * 60 if args.max_minutes else math.inf
    c = build_components(args)
    rng, gen = random.Random(args.seed), torch.Generator().manual_seed(args.seed)
    state = None
    if args.resume and (run / "checkpoint.pt").exists():
        state = torch.load(run / "checkpoint.pt", weights_only=False)
        for k, sd in state["models"].items():
            c[k].load_state_dict(sd)
        rng.setstate(state["rng"]["python"]), gen.set_state(state["rng"]["torch"])
        print(f"resumed: {state['stage']} step {state['step']}")
    else:
        for f in ("log.jsonl", "latents.pt", "checkpoint.pt"):
            (run / f).unlink(missing_ok=True)
        log(run, config=vars(args), t=time.time())
    t0 = time.time()
    stopped = "stopped at --max-minutes; run again with --resume"
    if args.init_from and state is None:
        load_model(c, args.init_from)
    elif args.init_from:  # resumed: weights from the checkpoint, the VAE's scaling factor from the model taken over
        config = json.loads((Path(args.init_from) / "vae" / "config.json").read_text())
        c["vae"].register_to_config(scaling_factor=config["scaling_factor"])
    if (state is None and not args.init_from) or (state and state["stage"] == "vae"):
        if not train_vae(args, c, run, state, rng, gen, deadline):
            print(stopped)
            return 1
        state = None
    if args.stop_after_vae:
        return 0
    if args.decoder_steps and (state is None or state["stage"] == "decoder"):
        if not train_vae(args, c, run, state, rng, gen, deadline, decoder_only=True):
            print(stopped)
            return 1
        state = None
    c["vae"].requires_grad_(False).eval()
    if not args.xl and args.position_steps and (state is None or state["stage"] == "position"):
        if args.teacher_from and state is None:
            load_teacher(c, args.teacher_from)
        elif not pretrain_position(args, c, run, state, rng, gen, deadline):
            print(stopped)
            return 1
        if not args.init_from:  # a fresh model starts from the teacher; one taken over keeps its own
            c["unet"].load_state_dict(c["position_unet"].state_dict())
            c["text_encoder"].load_state_dict(c["position_te"].state_dict())
        state = None
    stages = [xl_stage(args, c), xl_stage(args, c, refiner=True)] if args.xl else [sd_stage(args, c)]
    if args.fade_steps:
        stages.append(fade_stage(args, c))
    # Stages before the checkpoint's finished in an earlier part: their EMA weights are in it.
    first = [s.name for s in stages].index(state["stage"]) if state else 0
    for stage in stages[first:]:
        resumed = state if stage is stages[first] else None
        if stage.name == "fade" and resumed is None:  # its teacher: the UNet as the stages before left it
            c["fade_teacher"].load_state_dict(c["unet"].state_dict())
        if stage.steps and not train_unet(args, c, run, resumed, rng, gen, deadline, stage):
            print(stopped)
            return 1
    if args.xl:
        export_xl(c, args.xl_out, args.xl_out + "-refiner")
        out = args.xl_out
    else:
        out = export(c, args.out)
    log(run, done=True, out=out, seconds_this_part=round(time.time() - t0, 1))
    print("saved", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
