"""Whole-process timings: how long the commands take from a cold interpreter, and `latentgraph run`
against a minimal diffusers script that makes the same image.

    python bench/bench_cold_start.py                  # 5 rounds
    python bench/bench_cold_start.py --rounds 9

Every case is a fresh process (what a user waits for), run in turn within each round so that a
busy machine slows all of them alike; the table gives the median, the fastest and the slowest
round. The run case and the diffusers script draw the same picture (tiny-shapes, 64 px, 20 Euler
steps, cfg 6, seed 42; checked equal pixel for pixel after the rounds). The light commands
(`--help`, `nodes`, `validate`, `import`) are also checked not to import torch.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a large red circle on a blue background, at the left"

DIFFUSERS_SCRIPT = """
import sys
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

pipe = StableDiffusionPipeline.from_pretrained(sys.argv[1], local_files_only=True)
pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="linspace")
pipe.set_progress_bar_config(disable=True)
image = pipe(sys.argv[2], negative_prompt="", num_inference_steps=20, guidance_scale=6.0, height=64, width=64,
             generator=torch.Generator("cpu").manual_seed(42)).images[0]
image.save(sys.argv[3])
"""

HEAVY_PROBE = """
import json, sys
from latentgraph.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    print("HEAVY " + json.dumps([m for m in ("torch", "diffusers", "transformers") if m in sys.modules]),
          file=sys.stderr)
"""


def workflow() -> dict:
    def ref(node, output):
        return {"node": node, "output": output}

    return {"format": "latentgraph", "version": 2, "nodes": {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
        "latent": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "sampler": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"), "latent_image": ref("latent", "LATENT"), "seed": 42,
            "steps": 20, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "decode": {"type": "VAEDecode", "inputs": {"samples": ref("sampler", "LATENT"), "vae": ref("ckpt", "VAE")}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("decode", "IMAGE"), "filename_prefix": "bench"}},
    }}


def cases(work: Path) -> dict[str, list[str]]:
    py = sys.executable
    lg = [py, "-m", "latentgraph"]
    model = ROOT / "assets" / "models" / "tiny-shapes"
    return {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import torch'": [py, "-c", "import torch"],
        "python -c 'import torch, diffusers'": [py, "-c", "import torch, diffusers; diffusers.StableDiffusionPipeline"],
        "latentgraph --help": [*lg, "--help"],
        "latentgraph nodes": [*lg, "nodes"],
        "latentgraph nodes --json": [*lg, "nodes", "--json"],
        "latentgraph validate": [*lg, "validate", str(work / "wf.json")],
        "latentgraph import (ComfyUI UI file)": [*lg, "import", str(ROOT / "tests/data/comfyui/txt2img_ui.json")],
        "latentgraph run (tiny-shapes, 20 steps)": [*lg, "run", str(work / "wf.json"), "--out", str(work / "lg"),
                                                   "--quiet"],
        "diffusers script (same image)": [py, "-c", DIFFUSERS_SCRIPT, str(model), PROMPT, str(work / "diffusers.png")],
    }


def heavy_imports(argv: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", HEAVY_PROBE, *argv[3:]], capture_output=True, text=True)
    line = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY "))
    return json.loads(line.removeprefix("HEAVY "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "wf.json").write_text(json.dumps(workflow()))
        runs = cases(work)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(args.rounds):
            for name, argv in runs.items():
                t0 = time.perf_counter()
                done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
                times[name].append(time.perf_counter() - t0)
                print(f"round {round_ + 1}: {name}: {times[name][-1]:.2f}s", file=sys.stderr, flush=True)
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    raise SystemExit(f"{name} failed")
        ours = np.array(Image.open(sorted((work / "lg").glob("*.png"))[0]).convert("RGB"))
        theirs = np.array(Image.open(work / "diffusers.png").convert("RGB"))
        same = bool((ours == theirs).all())
        light = {name: heavy_imports(argv) for name, argv in runs.items()
                 if name.startswith("latentgraph") and "run" not in name}

    reference = statistics.median(times["diffusers script (same image)"])
    print(f"\nWhole processes, {args.rounds} rounds interleaved, {os.cpu_count()} CPUs, torch threads "
          f"{env['OMP_NUM_THREADS']}; run and diffusers images equal: {same}\n")
    print("| command | median s | fastest s | slowest s | vs diffusers script | imports torch/diffusers/transformers |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, values in times.items():
        heavy = (", ".join(light[name]) or "none") if name in light else ""
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} | "
              f"{statistics.median(values) / reference:.2f}× | {heavy} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
