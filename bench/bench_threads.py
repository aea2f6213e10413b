"""Torch CPU threads against run time, interleaved in one process (what `--threads N` sets).

    python bench/bench_threads.py                     # tiny-shapes, 64 px, 20 Euler steps; threads 1, 2, default
    python bench/bench_threads.py --threads 1 2 4 --repeats 9

Each repeat runs the same txt2img graph (a new seed, prompts cached) once per thread count, in
turn, so every setting meets the same load from whatever else shares the CPU. Printed: median
seconds per image, the spread (min-max), and the ratio to torch's default.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_txt2img import workflow  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="tiny-shapes")
    parser.add_argument("--models", default="models")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    default = torch.get_num_threads()

    from latentgraph.cli import _quiet_libraries
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings

    _quiet_libraries()
    out = Path(tempfile.mkdtemp(prefix="latentgraph-threads-"))
    executor = Executor(Settings(models=args.models, output=out, temp=out, device="cpu"))
    executor.run(workflow(args.ckpt, args.size, args.steps, "a red circle", 0, 0.5))  # load + warm-up
    counts = [None] + [n for n in args.threads if n != default]
    seconds: dict = {n: [] for n in counts}
    for i in range(args.repeats):
        for k, n in enumerate(counts):
            torch.set_num_threads(n or default)
            run = workflow(args.ckpt, args.size, args.steps, "a red circle", 1 + i * len(counts) + k, 0.5)  # uncached
            seconds[n].append(executor.run(run).seconds)
    print(f"\nthreads benchmark: {args.ckpt}, {args.size}x{args.size}, {args.steps} Euler steps, median of "
          f"{args.repeats}, {torch.get_num_interop_threads()} inter-op threads, torch's default {default} threads")
    print("| torch threads | s per image (median) | spread (min-max) | vs default |")
    print("|---|---:|---:|---:|")
    reference = statistics.median(seconds[None])
    for n in counts:
        median = statistics.median(seconds[n])
        label = f"{default} (default)" if n is None else str(n)
        print(f"| {label} | {median:.3f} | {min(seconds[n]):.3f}-{max(seconds[n]):.3f} | {median / reference:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
