"""Validation and scheduling time and memory against graph size (issue 22): linear, bounded.

    python bench/bench_validation.py                 # 10 ... 100,000 nodes, table printed
    python bench/bench_validation.py --write-docs    # and written into docs/benchmarks.md
    python bench/bench_validation.py --sizes 10 1000 --repeats 3

Shapes (every node reaches an output, so every one is validated and planned):
- chain: a checkpoint, an empty latent, LatentFlip nodes one after another, a decode and a save;
- fan: one empty latent read by n/3 LatentFlip nodes, each with its own decode and save (many outputs);
- cycles: LatentAdd nodes where node i reads nodes i+1 and i+2 (mod n), read by a decode and a save:
  one strongly connected component holding more simple cycles than can be counted;
- files: LoadImage nodes (half of them naming an image that is not there) each with a PreviewImage.

For each shape and size: the median seconds of `Executor.validate` (the document checked, then
validated: what /api/validate does) and µs per node, the peak memory tracemalloc sees during one
more validation, and two side-by-side comparisons run interleaved in the same process: validation
with the garbage collector running as usual against paused (what `validate` does now), and the
deep copy `load_workflow` used to make (copy.deepcopy) against the check that replaced it. A last
table times a run of no-op nodes with and without the pause the executor takes for large runs.
"""
from __future__ import annotations

import argparse
import copy
import gc
import platform
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from PIL import Image

from latentgraph.graph import gc_pause, limits
from latentgraph.graph.executor import Executor
from latentgraph.graph.limits import Limits
from latentgraph.graph.settings import Settings
from latentgraph.graph.validate import _validate_flat
from latentgraph.nodes import registry
from latentgraph.nodes.spec import LATENT, Input, Output, node

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_validation: begin -->", "<!-- bench_validation: end -->"


def link(node_id: str, output: str) -> dict:
    return {"node": node_id, "output": output}


def doc(nodes: dict) -> dict:
    return {"format": "latentgraph", "version": 2, "nodes": nodes}


def chain(n: int) -> dict:
    nodes = {"ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
             "0": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
    for i in range(1, max(n - 4, 1)):
        nodes[str(i)] = {"type": "LatentFlip", "inputs": {"samples": link(str(i - 1), "LATENT")}}
    last = str(max(n - 5, 0))
    nodes["decode"] = {"type": "VAEDecode", "inputs": {"samples": link(last, "LATENT"), "vae": link("ckpt", "VAE")}}
    nodes["save"] = {"type": "SaveImage", "inputs": {"images": link("decode", "IMAGE")}}
    return doc(nodes)


def fan(n: int) -> dict:
    nodes = {"ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
             "latent": {"type": "EmptyLatentImage", "inputs": {}}}
    for i in range(max((n - 2) // 3, 1)):
        nodes[f"f{i}"] = {"type": "LatentFlip", "inputs": {"samples": link("latent", "LATENT")}}
        nodes[f"d{i}"] = {"type": "VAEDecode",
                          "inputs": {"samples": link(f"f{i}", "LATENT"), "vae": link("ckpt", "VAE")}}
        nodes[f"s{i}"] = {"type": "SaveImage", "inputs": {"images": link(f"d{i}", "IMAGE")}}
    return doc(nodes)


def cycles(n: int) -> dict:
    k = max(n - 3, 3)
    nodes = {str(i): {"type": "LatentAdd", "inputs": {"samples1": link(str((i + 1) % k), "LATENT"),
                                                      "samples2": link(str((i + 2) % k), "LATENT")}} for i in range(k)}
    nodes["ckpt"] = {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}}
    nodes["decode"] = {"type": "VAEDecode", "inputs": {"samples": link("0", "LATENT"), "vae": link("ckpt", "VAE")}}
    nodes["save"] = {"type": "SaveImage", "inputs": {"images": link("decode", "IMAGE")}}
    return doc(nodes)


def files(n: int) -> dict:
    nodes = {}
    for i in range(max(n // 2, 1)):
        nodes[f"l{i}"] = {"type": "LoadImage", "inputs": {"image": f"{i % 20}.png" if i % 2 else "missing.png"}}
        nodes[f"p{i}"] = {"type": "PreviewImage", "inputs": {"images": link(f"l{i}", "IMAGE")}}
    return doc(nodes)


SHAPES = {"chain": chain, "fan": fan, "cycles": cycles, "files": files}


def median_seconds(function, repeats: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


def interleaved(a, b, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of a and b, alternating, so that the machine's load hits both alike."""
    times_a, times_b = [], []
    for _ in range(repeats):
        for function, times in ((a, times_a), (b, times_b)):
            gc.collect()
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
    return times_a, times_b


def peak_bytes(function) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def repeats_for(n: int, base: int) -> int:
    return base if n <= 1000 else max(3, base // 2) if n <= 10_000 else 3


# --- no-op nodes, registered for this script only, to time the executor's own bookkeeping --------

@node("BenchNoop", category="bench", description="Returns its input (bench only).",
      inputs=[Input("previous", LATENT, required=False)], outputs=[Output("LATENT", LATENT)])
def bench_noop(ctx, previous=None):
    return (previous,)


@node("BenchSink", category="bench", description="An output that does nothing (bench only).",
      inputs=[Input("previous", LATENT)], outputs=[], output_node=True)
def bench_sink(ctx, previous):
    return ()


def noop_chain(n: int) -> dict:
    nodes = {"0": {"type": "BenchNoop", "inputs": {}}}
    for i in range(1, n - 1):
        nodes[str(i)] = {"type": "BenchNoop", "inputs": {"previous": link(str(i - 1), "LATENT")}}
    nodes["out"] = {"type": "BenchSink", "inputs": {"previous": link(str(n - 2), "LATENT")}}
    return doc(nodes)


def measure(shape: str, workflow: dict, executor: Executor, repeats: int, tables: dict) -> None:
    """One shape at one size: a row of each table that applies."""
    count, settings = len(workflow["nodes"]), executor.settings
    errors = len(executor.validate(workflow))
    median, low, high = median_seconds(lambda: executor.validate(workflow), repeats)
    peak = peak_bytes(lambda: executor.validate(workflow))
    tables["validate"].append(f"| {shape} | {count:,} | {median:.4f} ({low:.4f}–{high:.4f}) | "
                              f"{median / count * 1e6:.1f} | {peak / (1 << 20):.1f} | {errors} |")
    print(tables["validate"][-1], flush=True)
    if count >= 1000:
        running, paused = interleaved(lambda: _validate_flat(workflow, settings), lambda: executor.validate(workflow),
                                      repeats)
        a, b = statistics.median(running), statistics.median(paused)
        tables["gc"].append(f"| {shape} | {count:,} | {a / count * 1e6:.1f} | {b / count * 1e6:.1f} | {b / a:.2f} |")
        print(tables["gc"][-1], flush=True)
    if shape == "chain":
        deep, checked = interleaved(lambda: copy.deepcopy(workflow), lambda: limits.check(workflow), repeats)
        a, b = statistics.median(deep), statistics.median(checked)
        tables["copy"].append(f"| {count:,} | {a * 1e3:.2f} | {b * 1e3:.2f} | {b / a:.2f} |")
        print(tables["copy"][-1], flush=True)


def measure_run(workflow: dict, settings: Settings, repeats: int, tables: dict) -> None:
    count = len(workflow["nodes"])

    def run(paused: bool):
        gc_pause.PAUSE_RUNS_FROM = 1000 if paused else 10**9
        Executor(settings).run(workflow)  # a fresh cache: every node runs

    try:
        running, paused = interleaved(lambda: run(False), lambda: run(True), repeats)
    finally:
        gc_pause.PAUSE_RUNS_FROM = 1000
    a, b = statistics.median(running), statistics.median(paused)
    tables["run"].append(f"| {count:,} | {a / count * 1e6:.1f} | {b / count * 1e6:.1f} | {b / a:.2f} |")
    print(tables["run"][-1], flush=True)


def run_tables(sizes: list[int], base_repeats: int) -> dict[str, list[str]]:
    registry()
    folder = Path(tempfile.mkdtemp(prefix="bench-validation-"))
    for name in ("models", "input", "output", "temp"):
        (folder / name).mkdir()
    for i in range(20):
        Image.new("RGB", (8, 8)).save(folder / "input" / f"{i}.png")
    settings = Settings(models=folder / "models", input=folder / "input", output=folder / "output",
                        temp=folder / "temp", device="cpu", limits=Limits(max_nodes=10**7))
    executor = Executor(settings)
    tables = {
        "validate": ["| shape | nodes | validate s (median, min–max) | µs per node | peak MiB | errors |",
                     "| --- | ---: | ---: | ---: | ---: | ---: |"],
        "gc": ["| shape | nodes | GC running: µs per node | GC paused: µs per node | paused / running |",
               "| --- | ---: | ---: | ---: | ---: |"],
        "copy": ["| nodes | copy.deepcopy ms | limits.check ms | check / deepcopy |", "| ---: | ---: | ---: | ---: |"],
        "run": ["| no-op nodes | GC running: µs per node | GC paused: µs per node | paused / running |",
                "| ---: | ---: | ---: | ---: |"],
    }
    for shape, build in SHAPES.items():
        for n in sizes:
            measure(shape, build(n), executor, repeats_for(n, base_repeats), tables)
    for n in [s for s in sizes if 1000 <= s <= 100_000]:
        measure_run(noop_chain(n), settings, max(3, repeats_for(n, base_repeats) // 2), tables)
    return tables


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{section}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=7, help="for up to 1,000 nodes; fewer above")
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    args = parser.parse_args(argv)
    started = time.time()
    tables = run_tables(args.sizes, args.repeats)
    machine = (f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
               f"{time.strftime('%Y-%m-%d')}; {time.time() - started:.0f} s in all")
    section = "\n".join([
        "## Validation at scale (issue 22)", "",
        "`python bench/bench_validation.py --write-docs` (" + machine + "). The machine is shared with other "
        "jobs, so single figures move by tens of percent; comparisons are interleaved run by run.", "",
        "`Executor.validate` (document check + validation, as /api/validate does) per graph shape and size; "
        "peak is tracemalloc's during one validation. `cycles` holds more simple cycles than can be counted "
        "and answers one error; `files` lists the input folder once, however many LoadImage nodes.", "",
        *tables["validate"], "",
        "Validation with Python's garbage collector running as usual against paused (as `validate` now does):", "",
        *tables["gc"], "",
        "The deep copy `load_workflow` made of a dict against the check that replaced it (depth and size "
        "bounds, no copy):", "",
        *tables["copy"], "",
        "A run of no-op nodes (the executor's bookkeeping only) with the collector running against paused "
        "(runs of 1,000 nodes or more are paused, with a young-generation pass after each node):", "",
        *tables["run"]])
    print("\n" + section)
    if args.write_docs:
        write_docs(section)
        print(f"\nwritten into {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
