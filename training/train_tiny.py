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
    ap.add_argument("--cache", type=int, default=20000, help="pictures whose latents the UNet trains on")
    ap.add_argument("--unet-steps", type=int, default=8000)
    ap.add_argument("--unet-batch", type=int, default=32)
    ap.add_argument("--unet-lr", type=float, default=1e-3)
    ap.add_argument("--min-snr", type=float, default=5.0, help="min-SNR-gamma loss weighting")
    ap.add_argument("--snr-floor", type=float, default=0.0,
                    help="floor of the x0-space loss weight (lifts the high-noise steps that decide layout)")
    ap.add_argument("--high-noise", type=float, default=0.0,
                    help="fraction of timesteps drawn from the noisiest 40%% (t >= 600) instead of uniformly")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay (warmed up) of UNet + text encoder")
    ap.add_argument("--ckpt-every", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=2000, help="UNet steps between judge evaluations")
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after a checkpoint) after this long")
    ap.add_argument("--stop-after-vae", action="store_true", help="stop once the VAE is trained")
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


def train_vae(args, c, run: Path, state: dict | None, rng, gen, deadline):
    device = args.device
    vae = c["vae"].to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    sched = cosine(opt, 100, args.vae_steps)
    step = 0
    if state:
        opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"])
        step = state["step"]
    bar = tqdm(range(step, args.vae_steps), initial=step, total=args.vae_steps, desc="vae", dynamic_ncols=True)
    for step in bar:
        x = images_to_tensor([shapes.render(shapes.random_scene(rng)) for _ in range(args.vae_batch)]).to(device)
        with torch.autocast(device.split(":")[0], torch.bfloat16):
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
            rec = vae.decode(z).sample.float()
        # L1 keeps edges sharp where MSE alone blurs them; the KL term only keeps latents bounded.
        kl = post.kl().mean() / x[0].numel()
        loss = F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x) + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step(), sched.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 10 == 0:
            log(run, stage="vae", step=step, loss=round(loss.item(), 5), lr=sched.get_last_lr()[0], t=time.time())
        done = step + 1
        if done % args.ckpt_every == 0 or done == args.vae_steps or time.time() > deadline:
            s = judge_vae(vae, device)
            log(run, stage="vae", step=done, judge=s)
            tqdm.write(f"vae step {done}: reconstructions\n{judge.table(s)}")
            save_state(run / "checkpoint.pt", {"stage": "vae", "step": done, "models": models_state(c),
                                               "opt": opt.state_dict(), "sched": sched.state_dict(),
                                               "rng": rng_state(rng, gen), "args": vars(args)})
            if time.time() > deadline and done < args.vae_steps:
                return False
    vae.eval()
    return True


def cosine(opt, warmup: int, total: int):
    from diffusers.optimization import get_cosine_schedule_with_warmup
    return get_cosine_schedule_with_warmup(opt, warmup, total)


def cache_latents(args, c, run: Path):
    """Latent mean/std of args.cache pictures (no withheld pair), and the VAE's scaling factor
    (1 / std of the latents, as SD's 0.18215 was chosen)."""
    path = run / "latents.pt"
    if path.exists():
        return torch.load(path)
    scenes = shapes.training_scenes(args.cache, seed=args.seed + 1)
    vae, means, stds = c["vae"], [], []
    with torch.no_grad(), torch.autocast(args.device.split(":")[0], torch.bfloat16):
        for i in tqdm(range(0, len(scenes), 256), desc="latents", dynamic_ncols=True):
            x = images_to_tensor([shapes.render(s) for s in scenes[i:i + 256]]).to(args.device)
            post = vae.encode(x).latent_dist
            means.append(post.mean.float().cpu()), stds.append(post.std.float().cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    cache = {"mean": mean, "std": std, "scenes": scenes, "scaling_factor": float(1 / mean.std())}
    torch.save(cache, path)
    return cache


def train_unet(args, c, run: Path, state: dict | None, rng, gen, deadline):
    from diffusers.training_utils import EMAModel, compute_snr
    device = args.device
    cache = cache_latents(args, c, run)
    c["vae"].register_to_config(scaling_factor=cache["scaling_factor"])
    unet, te, tok = c["unet"].to(device).train(), c["text_encoder"].to(device).train(), c["tokenizer"]
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=1e-2)
    sched = cosine(opt, 200, args.unet_steps)
    ema = EMAModel(params, decay=args.ema, use_ema_warmup=True, power=3 / 4)
    noise_sched = tm.train_scheduler()
    step = 0
    if state and state["stage"] == "unet":
        opt.load_state_dict(state["opt"]), sched.load_state_dict(state["sched"]), ema.load_state_dict(state["ema"])
        step = state["step"]
    ema.to(device)
    mean, std, scenes, sf = cache["mean"], cache["std"], cache["scenes"], cache["scaling_factor"]
    bar = tqdm(range(step, args.unet_steps), initial=step, total=args.unet_steps, desc="unet", dynamic_ncols=True)
    for step in bar:
        idx = torch.randint(0, len(scenes), (args.unet_batch,), generator=gen)
        eps_post = torch.randn((args.unet_batch, *mean.shape[1:]), generator=gen)
        latents = ((mean[idx].float() + std[idx].float() * eps_post) * sf).to(device)
        noise = torch.randn(latents.shape, generator=gen).to(device)
        n_t = noise_sched.config.num_train_timesteps
        t = torch.randint(0, n_t, (args.unet_batch,), generator=gen)
        high = torch.rand(args.unet_batch, generator=gen) < args.high_noise
        t = torch.where(high, torch.randint(int(0.6 * n_t), n_t, (args.unet_batch,), generator=gen), t).to(device)
        captions = [shapes.random_caption(scenes[i], rng) for i in idx.tolist()]
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(device)
        pred = unet(noise_sched.add_noise(latents, noise, t), t, te(ids)[0]).sample
        # The epsilon loss weighs an error in the clean picture by SNR. min-SNR-gamma caps that weight
        # for the easy low-noise steps; --snr-floor raises it for the noisiest steps, where the
        # prompt alone decides where the shape goes.
        snr = compute_snr(noise_sched, t)
        w = torch.clamp(snr, min=args.snr_floor, max=args.min_snr) / snr
        loss = (F.mse_loss(pred.float(), noise, reduction="none").mean((1, 2, 3)) * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(), sched.step(), ema.step(params)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % 10 == 0:
            log(run, stage="unet", step=step, loss=round(loss.item(), 5), lr=sched.get_last_lr()[0], t=time.time())
        done = step + 1
        last = done == args.unet_steps
        if done % args.eval_every == 0 or last:
            s = evaluate_ema(c, ema, params, run, done)
            tqdm.write(f"unet step {done}: EMA weights, 64 prompts, Euler 20 steps, cfg 6\n{judge.table(s)}")
        if done % args.ckpt_every == 0 or last or time.time() > deadline:
            save_state(run / "checkpoint.pt", {"stage": "unet", "step": done, "models": models_state(c),
                                               "opt": opt.state_dict(), "sched": sched.state_dict(),
                                               "ema": ema.state_dict(), "rng": rng_state(rng, gen),
                                               "args": vars(args)})
            if time.time() > deadline and not last:
                return None
    return ema, params


def evaluate_ema(c, ema, params, run: Path, step: int) -> dict:
    from .evaluate import evaluate, grid
    ema.store(params)
    ema.copy_to(params)
    c["unet"].eval(), c["text_encoder"].eval()
    t0 = time.time()
    s, images, _ = evaluate(build_pipeline(c))
    grid(images).save(run / f"samples-{step:05d}.png")
    ema.restore(params)
    c["unet"].train(), c["text_encoder"].train()
    log(run, stage="unet", step=step, judge=s, eval_seconds=round(time.time() - t0, 1))
    return s


def models_state(c: dict) -> dict:
    return {k: c[k].state_dict() for k in ("vae", "text_encoder", "unet")}


def build_components(args) -> dict:
    torch.manual_seed(args.seed)  # initial weights
    tok = tm.build_tokenizer()
    ints = lambda text: tuple(int(v) for v in text.split(","))  # noqa: E731
    return {"tokenizer": tok, "text_encoder": tm.build_text_encoder(tok),
            "vae": tm.build_vae(ints(args.vae_channels)), "unet": tm.build_unet(channels=ints(args.unet_channels))}


def export(c: dict, out: str):
    """Save in diffusers layout, safetensors, UNet and VAE in fp16 (a few MB); diffusers loads
    them as float32 unless told otherwise."""
    # The text encoder stays float32 (0.6 MB): transformers would otherwise load it as float16.
    parts = {k: (copy.deepcopy(v).to("cpu").half() if k in ("vae", "unet") else v) for k, v in c.items()}
    parts["text_encoder"] = copy.deepcopy(c["text_encoder"]).to("cpu").float()
    pipe = build_pipeline(parts)
    pipe.save_pretrained(out, safe_serialization=True)
    # vocab.json + merges.txt too, for tokenizer loaders that don't read tokenizer.json
    c["tokenizer"].backend_tokenizer.model.save(str(Path(out) / "tokenizer"))
    return out


def main(argv=None):
    args = parse_args(argv)
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
    if state is None or state["stage"] == "vae":
        if not train_vae(args, c, run, state, rng, gen, deadline):
            print("stopped at --max-minutes; run again with --resume")
            return 1
        state = None
    if args.stop_after_vae:
        return 0
    c["vae"].requires_grad_(False).eval()
    result = train_unet(args, c, run, state, rng, gen, deadline)
    if result is None:
        print("stopped at --max-minutes; run again with --resume")
        return 1
    ema, params = result
    ema.copy_to(params)
    export(c, args.out)
    log(run, done=True, out=args.out, seconds_this_part=round(time.time() - t0, 1))
    print("saved", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
