"""Sweep throughput on a Ray worker pool, and what cache-affinity placement saves.

    python bench/bench_ray_sweep.py                    # CPU: one process vs 1 and 2 workers, 1 thread each
    python bench/bench_ray_sweep.py --rounds 5 --prompts 4 --seeds 6
    python bench/bench_ray_sweep.py --device cuda      # GPUs: 1 worker vs one per GPU (needs 2+ GPUs)

Every configuration runs the same kind of sweep (prompts x seeds on the shipped tiny-shapes model,
ordered by prompt, as sweeps are), with new prompts and seeds each round so that nothing is cached
from an earlier round; on the CPU the configurations take turns round by round (interleaved), on
GPUs one pool after the other (each holds its GPUs); each after a warm-up that starts the workers
and loads the model. Printed as a table: median sweep wall time, spread,
images per second, and from the pools' reports the node hit rate (nodes served from a worker's
cache / all nodes) and text encodings computed against the distinct prompts. "FIFO" is the same
pool placing each job on the first idle worker, without affinity, for comparison.
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

COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "heart"]


def sweep(round_: int, prompts: int, seeds: int, size: int, steps: int) -> list[dict]:
    """prompts x seeds jobs, grouped by prompt; prompts and seeds new in every round."""
    jobs = []
    for p in range(prompts):
        k = round_ * prompts + p
        prompt = f"a {COLOURS[k % len(COLOURS)]} {SHAPES[(k // len(COLOURS)) % len(SHAPES)]}, take {round_}"
        jobs += [txt2img("tiny-shapes", prompt, seed=1000 * round_ + s, steps=steps, width=size, height=size)
                 for s in range(seeds)]
    return jobs


def fifo_assign(pending, workers, costs, window=placement.WINDOW):
    """No affinity: each waiting job, in order, to the first idle worker."""
    idle = [w for w in workers if w.ready and w.running is None]
    return [placement.Placed(job, worker, (0, 0)) for (job, _), worker in zip(pending[:window], idle)]


class PoolConfig:
    def __init__(self, name: str, settings: Settings, workers: int, threads: int, fifo: bool = False):
        self.name, self.fifo = name, fifo
        self.pool = ray_pool.RayPool(settings, workers=workers, threads=threads)

    def run(self, workflows: list[dict]) -> tuple[float, dict]:
        before = self.pool.report()
        original = ray_pool.assign
        ray_pool.assign = fifo_assign if self.fifo else original
        try:
            t0 = time.perf_counter()
            self.pool.run_all(workflows)
            seconds = time.perf_counter() - t0
        finally:
            ray_pool.assign = original
        after = self.pool.report()
        jobs = self.pool.finished[-len(workflows):]
        encodes = sum(r.status == "executed" and r.node_type == "CLIPTextEncode" and r.node_id == "pos"
                      for j in jobs for r in j.result.report)
        return seconds, {"nodes": after["nodes"] - before["nodes"], "cached": after["cached"] - before["cached"],
                         "encodes": encodes}


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
        reports = [r for result in results for r in result.report]
        return seconds, {"nodes": len(reports), "cached": sum(r.status == "cached" for r in reports),
                         "encodes": sum(r.status == "executed" and r.node_id == "pos" for r in reports)}


def folders(root: Path, device: str) -> Settings:
    for name in ("input", "output", "temp", "models"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return Settings(models=root / "models", input=root / "input", output=root / "output", temp=root / "temp",
                    device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, help="the larger pool (default: 2 on CPUs, every GPU on CUDA)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
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
                   lambda: LocalConfig(f"one process, {n} threads", folders(root / "ln", "cpu"), n),
                   lambda: PoolConfig("Ray, 1 worker x 1 thread", folders(root / "p1", "cpu"), 1, 1),
                   lambda: PoolConfig(f"Ray, {n} workers x 1 thread", folders(root / "pn", "cpu"), n, 1),
                   lambda: PoolConfig(f"Ray, {n} workers x 1 thread, FIFO", folders(root / "pf", "cpu"), n, 1,
                                      fifo=True)]]

    jobs = args.prompts * args.seeds
    times: dict[str, list[float]] = {}
    stats: dict[str, dict[str, int]] = {}
    for phase in phases:
        configs = [make() for make in phase]
        for config in configs:
            if isinstance(config, PoolConfig):
                config.pool.wait_ready()
            config.run([txt2img("tiny-shapes", "warm-up", steps=2, width=args.size, height=args.size)] * (n + 1))
            times[config.name], stats[config.name] = [], {"nodes": 0, "cached": 0, "encodes": 0}
        for round_ in range(1, args.rounds + 1):
            workflows = sweep(round_, args.prompts, args.seeds, args.size, args.steps)
            for config in configs:
                seconds, counts = config.run(workflows)
                times[config.name].append(seconds)
                for key in counts:
                    stats[config.name][key] += counts[key]
                print(f"round {round_}: {config.name}: {seconds:.2f} s", file=sys.stderr, flush=True)
        for config in configs:
            if isinstance(config, PoolConfig):
                config.pool.close()

    names = list(times)
    base = statistics.median(times[names[0]])
    print(f"\n{jobs}-job sweeps ({args.prompts} prompts x {args.seeds} seeds, {args.size}px, {args.steps} steps, "
          f"tiny-shapes, {args.device}), {args.rounds} rounds\n")
    print("| configuration | sweep s (median) | min-max | images/s | vs first row | node hit rate | "
          "prompt encodings / distinct |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        t, s = times[name], stats[name]
        median = statistics.median(t)
        print(f"| {name} | {median:.2f} | {min(t):.2f}-{max(t):.2f} | {jobs / median:.2f} | "
              f"{base / median:.2f}x | {s['cached'] / s['nodes']:.0%} | "
              f"{s['encodes']} / {args.prompts * args.rounds} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
