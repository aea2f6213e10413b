"""Quality gate for the step caches: each acceleration against the plain graph, prompt by prompt,
interleaved in one process on the same loaded model.

    python bench/bench_step_cache.py                       # shipped tiny-shapes: the judge's 64 prompts
    python bench/bench_step_cache.py --sd15-size --size 256 --prompts 2 --steps 20 --only deep3-0 fb0.1

Per acceleration: the sampler node's median seconds per image and the speed-up (median of the
per-prompt ratios to the plain graph, with their range), the judge's figures on the shipped model
(training/judge.py; 20 Euler steps, cfg 6, picture i seeded i, as `latentgraph.training.evaluate`),
and the mean SSIM of its images to the plain graph's. The gate: an acceleration whose judge
figures drop by more than 2 points, or whose mean SSIM is under 0.9, is marked as failing it.
`--sd15-size` uses a random-weight model with SD1.5's full-size architecture (SSIM only: the judge
reads tiny-shapes pictures).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

ACCELERATIONS = {  # name -> (node type, inputs)
    "deep2-0": ("DeepCache", {"cache_interval": 2, "cache_depth": 0, "start_step": 0, "end_step": 1000}),
    "deep3-0": ("DeepCache", {"cache_interval": 3, "cache_depth": 0, "start_step": 0, "end_step": 1000}),
    "deep3-2": ("DeepCache", {"cache_interval": 3, "cache_depth": 2, "start_step": 0, "end_step": 1000}),
    "fb0.1": ("ApplyFBCacheOnModel", {"residual_diff_threshold": 0.1}),
    "fb0.2": ("ApplyFBCacheOnModel", {"residual_diff_threshold": 0.2}),
}
LABELS = {"deep2-0": "DeepCache interval 2, depth 0", "deep3-0": "DeepCache interval 3, depth 0",
          "deep3-2": "DeepCache interval 3, depth 2", "fb0.1": "First-block cache, threshold 0.1",
          "fb0.2": "First-block cache, threshold 0.2"}
JUDGED = ("background", "colour", "shape", "position", "size", "all")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two uint8 RGB pictures (Wang et al. 2004: Gaussian window
    sigma 1.5, K1 0.01, K2 0.03, L 255), averaged over the channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for ch in range(3):
        x, y = a[..., ch].astype(np.float64), b[..., ch].astype(np.float64)
        mx, my = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
        vx = gaussian_filter(x * x, 1.5) - mx * mx
        vy = gaussian_filter(y * y, 1.5) - my * my
        cov = gaussian_filter(x * y, 1.5) - mx * my
        values.append(((2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())
    return float(np.mean(values))


def workflow(ckpt: str, prompt: str, seed: int, steps: int, size: int, acceleration: str | None) -> dict:
    def ref(node, output):
        return {"node": node, "output": output}

    model = ref("ckpt", "MODEL")
    nodes = {"ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}}}
    if acceleration:
        node_type, inputs = ACCELERATIONS[acceleration]
        nodes["cache"] = {"type": node_type, "inputs": {"model": model, **inputs}}
        model = ref("cache", "MODEL")
    nodes.update({
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": model, "positive": ref("pos", "CONDITIONING"), "negative": ref("neg", "CONDITIONING"),
            "latent_image": ref("latent", "LATENT"), "seed": seed, "steps": steps, "cfg": 6.0,
            "sampler_name": "euler", "scheduler": "default"}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("decode", "IMAGE"), "filename_prefix": "gate"}},
    })
    return {"format": "latentgraph", "version": 2, "nodes": nodes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sd15-size", action="store_true", help="a random SD1.5-size model instead of tiny-shapes")
    parser.add_argument("--prompts", type=int, default=None, help="the first N prompts only")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=list(ACCELERATIONS), help="these accelerations only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from latentgraph.cli import _quiet_libraries
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings
    from latentgraph.training import judge
    from latentgraph.training.shapes import caption, eval_scenes

    _quiet_libraries()
    work = Path(tempfile.mkdtemp(prefix="latentgraph-gate-"))
    ckpt = "tiny-shapes"
    if args.sd15_size:
        sys.path.insert(0, str(Path(__file__).parent))
        from gpu_check import save_full_size_sd15
        ckpt = "sd15-size-random"
        save_full_size_sd15(work / "models" / "checkpoints" / ckpt)
    executor = Executor(Settings(models=work / "models", output=work / "out", temp=work / "temp", device="cpu"))
    scenes = eval_scenes()[:args.prompts]
    prompts = [caption(s) for s in scenes] if not args.sd15_size else \
        [f"a photo of a {c} house on a hill" for c in ("red", "blue", "white", "black", "green")][:args.prompts or 2]
    names = [None] + list(args.only or ACCELERATIONS)
    images: dict = {name: [] for name in names}
    seconds: dict = {name: [] for name in names}
    t0 = time.perf_counter()
    for i, prompt in enumerate(prompts):
        for name in names:  # interleaved: every acceleration meets the same machine state as the plain run
            result = executor.run(workflow(ckpt, prompt, i, args.steps, args.size, name))
            seconds[name].append(next(r.seconds for r in result.report if r.node_id == "sampler"))
            with Image.open(result.images[0]["path"]) as picture:
                images[name].append(np.array(picture.convert("RGB")))
        print(f"prompt {i + 1}/{len(prompts)} done, {time.perf_counter() - t0:.0f}s", file=sys.stderr)

    base_scores = None if args.sd15_size else judge.score(images[None], scenes)
    print(f"\nstep-cache quality gate: {ckpt}, {args.size}x{args.size}, {args.steps} Euler steps, cfg 6, "
          f"{len(prompts)} prompts, torch threads {torch.get_num_threads()}, CPU")
    cols = "" if args.sd15_size else " | " + " | ".join(JUDGED)
    print(f"| run | sampler s (median) | speed-up (median, range) | mean SSIM (min){cols} | gate |")
    print("|---" * (5 + (0 if args.sd15_size else len(JUDGED))) + "|")
    for name in names:
        ratios = [b / a for a, b in zip(seconds[name], seconds[None])]
        similarity = [ssim(a, b) for a, b in zip(images[name], images[None])]
        row = (f"| {LABELS.get(name, 'plain graph')} | {statistics.median(seconds[name]):.3f} | "
               f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | "
               f"{np.mean(similarity):.3f} ({min(similarity):.3f})")
        fails = [] if np.mean(similarity) >= 0.9 else ["SSIM < 0.9"]
        if base_scores is not None:
            scores = judge.score(images[name], scenes)
            row += " | " + " | ".join(f"{100 * scores[k]:.1f}%" for k in JUDGED)
            fails += [f"{k} -{100 * (base_scores[k] - scores[k]):.1f} pt" for k in JUDGED
                      if base_scores[k] - scores[k] > 0.02 + 1e-9]
        print(row + f" | {'fails: ' + ', '.join(fails) if fails else 'passes'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
