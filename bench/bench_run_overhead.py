"""The per-run costs outside the models that cProfile found on the tiny model, before and after
the lean run path, timed interleaved in one process (median microseconds per call).

    python bench/bench_run_overhead.py [--ckpt-folder assets/models/tiny-shapes]

- the UNet's device and dtype: diffusers' `.device` / `.dtype` walk the module tree; the run path
  now reads the first weight (`values.module_device` / `module_dtype`);
- the checkpoint folder's content digest for cache keys: every file listed, resolved and looked up
  each run; now one stat per file, the digest remembered under the files' sizes and times;
- the scheduler: built and its timesteps set each run; now copied from one built once.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch


def old_folder_digest(path: Path) -> str:
    """graph/cache.file_digest for folders before the memo (per-file digests remembered, as then)."""
    from latentgraph.graph.cache import file_digest

    h = hashlib.sha256()
    for sub in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(sub.relative_to(path).as_posix().encode() + b"\0" + file_digest(sub).encode())
    return h.hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt-folder", default=None, help="a diffusers checkpoint folder (default: tiny-shapes)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from diffusers import UNet2DConditionModel

    from latentgraph.graph.cache import file_digest
    from latentgraph.nodes.sampling import new_schedule
    from latentgraph.nodes.schedulers import make_scheduler
    from latentgraph.nodes.values import DiffusionModel, module_device, module_dtype

    folder = Path(args.ckpt_folder) if args.ckpt_folder else \
        Path(__file__).resolve().parents[1] / "assets" / "models" / "tiny-shapes"
    unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet")
    config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    model = DiffusionModel(unet=unet, scheduler_config=config, family="sd15", name=folder.name)
    assert old_folder_digest(folder) == file_digest(folder)

    def old_schedule():
        sched = make_scheduler(config, "euler", "normal", 0)
        sched.set_timesteps(20, device=unet.device)
        return sched

    pairs = {
        "UNet device + dtype": (lambda: (unet.device, unet.dtype), lambda: (module_device(unet), module_dtype(unet))),
        "checkpoint folder digest": (lambda: old_folder_digest(folder), lambda: file_digest(folder)),
        "scheduler (euler, 20 steps)": (old_schedule, lambda: new_schedule(model, "euler", "normal", 0, 20)),
    }
    times = {name: ([], []) for name in pairs}
    for _ in range(args.repeats):
        for name, (before, after) in pairs.items():
            for fn, out in zip((before, after), times[name]):
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e6)
    print(f"\nrun-path overhead: {folder.name}, median of {args.repeats} interleaved calls, 1 thread")
    print("| per run | before µs | after µs | saved µs |")
    print("|---|---:|---:|---:|")
    for name, (before, after) in times.items():
        b, a = statistics.median(before), statistics.median(after)
        print(f"| {name} | {b:.0f} | {a:.0f} | {b - a:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
