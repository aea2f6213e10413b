"""Sweep throughput on a Ray worker pool, and what cache-affinity placement saves.

    python bench/bench_ray_sweep.py                    # CPU: one process vs 1 and 2 workers, 1 thread each
    python bench/bench_ray_sweep.py --rounds 5 --threads-baseline
    python bench/bench_ray_sweep.py --device cuda      # GPUs: 1 worker vs one per GPU (needs 2+ GPUs)

Two kinds of sweep, each round with new values so that nothing is cached from an earlier round:
"prompts" (prompts x seeds on the shipped tiny-shapes model, grouped by prompt, as sweeps are
ordered) and "checkpoints" (two new tiny random SD1.5 checkpoints x seeds, grouped by checkpoint).
On the CPU the configurations take turns round by round (interleaved); on GPUs one pool after the
other (each holds its GPUs); each after a warm-up that starts the workers and loads the model.
Printed as a table per sweep: median wall time, spread, images per second, and from the jobs'
reports the node hit rate (nodes served from a cache / all nodes), text encodings and checkpoint
loads computed against the distinct ones. "FIFO" is the same pool placing each job on the first
idle worker, without affinity, for comparison. --threads-baseline adds one process with as many
torch threads as the larger pool has workers.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import txt2img  # noqa: E402

from latentgraph.graph import placement, ray_pool  # noqa: E402
from latentgraph.graph.executor import Executor  # noqa: E402
from latentgraph.graph.settings import Settings  # noqa: E402
from latentgraph.tiny_random import save_sd15  # noqa: E402

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "heart"]
COUNTS = ("nodes", "cached", "encodes", "loads")


def prompt_sweep(round_: int, args) -> list[dict]:
    """prompts x seeds jobs, grouped by prompt; prompts and seeds new in every round."""
    jobs = []
    for p in range(args.prompts):
        k = round_ * args.prompts + p
        prompt = f"a {COLOURS[k % len(COLOURS)]} {SHAPES[(k // len(COLOURS)) % len(SHAPES)]}, take {round_}"
        jobs += [txt2img("tiny-shapes", prompt, seed=1000 * round_ + s, steps=args.steps, width=args.size,
                         height=args.size) for s in range(args.seeds)]
    return jobs


def checkpoint_sweep(round_: int, args, models: Path) -> list[dict]:
    """2 new checkpoints x seeds jobs, grouped by checkpoint."""
    jobs = []
    for c in range(2):
        name = f"round{round_}-{c}"
        if not (models / "checkpoints" / name).exists():
            save_sd15(models / "checkpoints" / name, seed=100 * round_ + c)
        jobs += [txt2img(name, "a red circle", seed=s, steps=args.steps, width=args.size, height=args.size)
                 for s in range(args.seeds)]
    return jobs


def counts(reports) -> dict[str, int]:
    reports = list(reports)
    return {"nodes": len(reports), "cached": sum(r.status == "cached" for r in reports),
            "encodes": sum(r.status == "executed" and r.node_id == "pos" for r in reports),
            "loads": sum(r.status == "executed" and r.node_id == "ckpt" for r in reports)}


def fifo_assign(pending, workers, costs, window=placement.WINDOW):
    """No affinity: each waiting job, in order, to the first idle worker."""
    idle = [w for w in workers if w.ready and w.running is None]
    return [placement.Placed(job, worker, (0, 0)) for (job, _), worker in zip(pending[:window], idle)]


class PoolConfig:
    def __init__(self, name: str, settings: Settings, workers: int, threads: int, fifo: bool = False):
        self.name, self.fifo = name, fifo
        self.pool = ray_pool.RayPool(settings, workers=workers, threads=threads)

    def run(self, workflows: list[dict]) -> tuple[float, dict]:
        original = ray_pool.assign
        ray_pool.assign = fifo_assign if self.fifo else original
        try:
            t0 = time.perf_counter()
            self.pool.run_all(workflows)
            seconds = time.perf_counter() - t0
        finally:
            ray_pool.assign = original
        jobs = list(self.pool.finished)[-len(workflows):]
        return seconds, counts(r for j in jobs for r in j.result.report)


class LocalConfig:
    def __init__(self, name: str, settings: Settings, threads: int):
        self.name, self.threads = name, threads
        self.executor = Executor(settings)

    def run(self, workflows: list[dict]) -> tuple[float, dict]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            t0 = time.perf_counter()
            results = [self.executor.run(w) for w in workflows]
            seconds = time.perf_counter() - t0
        finally:
            torch.set_num_threads(previous)
        return seconds, counts(r for result in results for r in result.report)


def folders(root: Path, device: str) -> Settings:
    """Its own input, output and temp folders; the models folder shared by every configuration."""
    for name in ("input", "output", "temp"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return Settings(models=root.parent / "models", input=root / "input", output=root / "output",
                    temp=root / "temp", device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, help="the larger pool (default: 2 on CPUs, every GPU on CUDA)")
    parser.add_argument("--threads-baseline", action="store_true",
                        help="also one process with as many torch threads as the larger pool has workers")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    (root / "models" / "checkpoints").mkdir(parents=True)
    if args.device == "cuda":
        # One pool at a time (each holds its GPUs): pools run one after the other, not interleaved.
        gpus = torch.cuda.device_count()
        n = args.workers or gpus
        ray.init(address="local", num_gpus=gpus, include_dashboard=False, logging_level=logging.WARNING)
        phases = [[lambda: PoolConfig("Ray, 1 GPU worker", folders(root / "p1", "cuda"), 1, 1)],
                  [lambda: PoolConfig(f"Ray, {n} GPU workers", folders(root / "pn", "cuda"), n, 1)],
                  [lambda: PoolConfig(f"Ray, {n} GPU workers, FIFO", folders(root / "pf", "cuda"), n, 1, fifo=True)]]
    else:
        n = args.workers or 2
        torch.set_num_threads(1)
        # Ray runs its workers at niceness 15: the one-process rows run at the same, so that a CPU
        # shared with other programs treats both alike.
        os.nice(15 - os.nice(0))
        ray.init(address="local", num_cpus=1 + 2 * n, include_dashboard=False, logging_level=logging.WARNING)
        phases = [[lambda: LocalConfig("one process, 1 thread", folders(root / "l1", "cpu"), 1),
                   *([lambda: LocalConfig(f"one process, {n} threads", folders(root / "ln", "cpu"), n)]
                     if args.threads_baseline else []),
                   lambda: PoolConfig("Ray, 1 worker x 1 thread", folders(root / "p1", "cpu"), 1, 1),
                   lambda: PoolConfig(f"Ray, {n} workers x 1 thread", folders(root / "pn", "cpu"), n, 1),
                   lambda: PoolConfig(f"Ray, {n} workers x 1 thread, FIFO", folders(root / "pf", "cpu"), n, 1,
                                      fifo=True)]]

    kinds = {"prompts": lambda r: prompt_sweep(r, args),
             "checkpoints": lambda r: checkpoint_sweep(r, args, root / "models")}
    times: dict[tuple[str, str], list[float]] = {}
    stats: dict[tuple[str, str], dict[str, int]] = {}
    sizes: dict[str, int] = {}
    for phase in phases:
        configs = [make() for make in phase]
        for config in configs:
            if isinstance(config, PoolConfig):
                config.pool.wait_ready()
            config.run([txt2img("tiny-shapes", "warm-up", steps=2, width=args.size, height=args.size)] * (n + 1))
            for kind in kinds:
                times[kind, config.name], stats[kind, config.name] = [], dict.fromkeys(COUNTS, 0)
        for round_ in range(1, args.rounds + 1):
            for kind, make_sweep in kinds.items():
                workflows = make_sweep(round_)
                sizes[kind] = len(workflows)
                for config in configs:
                    seconds, found = config.run(workflows)
                    times[kind, config.name].append(seconds)
                    for key in COUNTS:
                        stats[kind, config.name][key] += found[key]
                    print(f"round {round_}, {kind}: {config.name}: {seconds:.2f} s", file=sys.stderr, flush=True)
        for config in configs:
            if isinstance(config, PoolConfig):
                config.pool.close()

    # tiny-shapes is loaded at the warm-up; each checkpoint sweep brings two new ones (and prompt encodings)
    distinct = {"prompts": (args.prompts * args.rounds, 0), "checkpoints": (2 * args.rounds, 2 * args.rounds)}
    for kind in kinds:
        names = [name for k, name in times if k == kind]
        base = statistics.median(times[kind, names[0]])
        what = (f"{args.prompts} prompts x {args.seeds} seeds, tiny-shapes" if kind == "prompts" else
                f"2 tiny random checkpoints x {args.seeds} seeds")
        print(f"\n{sizes[kind]}-job sweeps of {kind} ({what}, {args.size}px, {args.steps} steps, {args.device}), "
              f"{args.rounds} rounds\n")
        print("| configuration | sweep s (median) | min-max | images/s | vs first row | node hit rate | "
              "text encodings / distinct | checkpoint loads / distinct |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name in names:
            t, s = times[kind, name], stats[kind, name]
            median = statistics.median(t)
            print(f"| {name} | {median:.2f} | {min(t):.2f}-{max(t):.2f} | {sizes[kind] / median:.2f} | "
                  f"{base / median:.2f}x | {s['cached'] / s['nodes']:.0%} | {s['encodes']} / {distinct[kind][0]} | "
                  f"{s['loads']} / {distinct[kind][1]} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
