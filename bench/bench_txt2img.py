"""Side-by-side timing: latentgraph's txt2img graph vs diffusers' StableDiffusionPipeline on the same
loaded modules, in one process, plus the cached re-runs the graph makes possible.

    python bench/bench_txt2img.py                      # tiny-shapes, CPU, 20 euler steps
    python bench/bench_txt2img.py --device cuda --repeats 10
    python bench/bench_txt2img.py --models ~/models --ckpt my-sd15 --size 512

Printed as a table: median wall seconds per image, the part of it spent inside model calls (text
encoder, UNet, VAE) and the rest (orchestration: scheduling, caching, tensors to PNG), and the
ratio to the pipeline.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch


class ModelClock:
    """Adds up the seconds spent inside the models' forward calls (synchronising CUDA)."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, 0.0

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def patched(self, obj, method: str):
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            self._sync()
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._sync()
                self.seconds += time.perf_counter() - t0

        setattr(obj, method, timed)
        try:
            yield
        finally:
            setattr(obj, method, original)


def workflow(ckpt: str, size: int, steps: int, prompt: str, seed: int, alpha: float) -> dict:
    def ref(node, output):
        return {"node": node, "output": output}

    return {"format": "latentgraph", "version": 2, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"),
            "latent_image": ref("latent", "LATENT"), "seed": seed, "steps": steps, "cfg": 6.0,
            "sampler_name": "euler", "scheduler": "normal"}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "sharpen": {"type": "ImageSharpen", "inputs": {"image": ref("decode", "IMAGE"), "alpha": alpha}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("sharpen", "IMAGE"), "filename_prefix": "bench"}},
    }}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="tiny-shapes")
    parser.add_argument("--models", default="models")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    import diffusers

    from latentgraph.cli import _quiet_libraries
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings

    _quiet_libraries()
    out = Path(tempfile.mkdtemp(prefix="latentgraph-bench-"))
    executor = Executor(Settings(models=args.models, output=out, temp=out, device=args.device, dtype=args.dtype))
    device = executor.device
    prompts = [f"a {size} {colour} circle on a blue background" for size in ("large", "small")
               for colour in ("red", "green", "yellow", "white", "black", "orange")]
    t0 = time.perf_counter()
    executor.run(workflow(args.ckpt, args.size, args.steps, prompts[-1], 0, 0.5))  # load + warm up
    load_seconds = time.perf_counter() - t0
    ((model, clip, vae),) = executor.loaded_models()
    clock = ModelClock(device)
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        scheduler=diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    rows: dict[str, list[tuple[float, float]]] = {}

    def measure(name, fn):
        clock.seconds = 0.0
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rows.setdefault(name, []).append((time.perf_counter() - start, clock.seconds))

    def pipeline_run(i):
        image = pipe(prompts[i % len(prompts)], negative_prompt="", num_inference_steps=args.steps, guidance_scale=6.0,
                     height=args.size, width=args.size, generator=torch.Generator("cpu").manual_seed(i)).images[0]
        image.save(out / f"pipe_{i}.png", compress_level=4)

    base = workflow(args.ckpt, args.size, args.steps, prompts[0], 0, 0.5)
    with clock.patched(model.unet, "forward"), clock.patched(vae.vae, "decode"), \
            clock.patched(clip.encoders[0], "forward"):
        for i in range(args.repeats):
            # Interleaved, so that both see the same machine state.
            measure("diffusers StableDiffusionPipeline", lambda i=i: pipeline_run(i))
            fresh = workflow(args.ckpt, args.size, args.steps, prompts[i % len(prompts)] + f" {i}", 100 + i, 0.5)
            measure("graph, new prompt and seed", lambda wf=fresh: executor.run(wf))
            seeded = copy.deepcopy(base)
            seeded["nodes"]["sampler"]["inputs"]["seed"] = 200 + i
            measure("graph, new seed (prompts cached)", lambda wf=seeded: executor.run(wf))
            sharper = copy.deepcopy(seeded)
            sharper["nodes"]["sharpen"]["inputs"]["alpha"] = 1.0 + i / 10
            measure("graph, only ImageSharpen changed", lambda wf=sharper: executor.run(wf))

    reference = statistics.median(t for t, _ in rows["diffusers StableDiffusionPipeline"])
    reference_outside = statistics.median(t - m for t, m in rows["diffusers StableDiffusionPipeline"])
    print(f"\nlatentgraph txt2img benchmark: {args.ckpt}, {args.size}x{args.size}, {args.steps} euler steps, cfg 6, "
          f"device {device}, dtype {executor.dtype}, torch threads {torch.get_num_threads()}, "
          f"median of {args.repeats}; first run (load + warm-up) {load_seconds:.2f}s")
    header = (f"| {'run':<36} | {'total s':>9} | {'in models s':>11} | {'outside s':>9} | {'vs pipeline':>11} "
              f"| {'outside vs pipeline':>19} | {'outside spread s':>16} |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, samples in rows.items():
        total = statistics.median(t for t, _ in samples)
        inside = statistics.median(m for _, m in samples)
        outside = statistics.median(t - m for t, m in samples)
        spread = sorted(t - m for t, m in samples)
        print(f"| {name:<36} | {total:>9.4f} | {inside:>11.4f} | {outside:>9.4f} | {total / reference:>10.2f}x "
              f"| {outside / reference_outside:>18.2f}x | {spread[0]:.4f}-{spread[-1]:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
