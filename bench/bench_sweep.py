"""A 12-picture seed sweep against the ways to make the same 12 pictures without sweep support,
side by side, interleaved repetition by repetition (issue 20).

    python bench/bench_sweep.py                     # examples/txt2img.json (tiny-shapes, 20 steps, 64 px)
    python bench/bench_sweep.py --repeats 3 --pictures 12

Rows (wall seconds for all the pictures; median and range over the repetitions):
  1. `latentgraph run WF --sweep sampler.seed=... --grid`: one process, one cache, plus the grid;
  2. one `latentgraph run WF --set sampler.seed=N` process per picture (what a script without sweeps does);
  3. one POST /api/queue per picture to a warm `latentgraph serve` (its start not counted), timed from
     the first POST to the last job's end: a queue without sweep support, but with the server's cache;
  4. in this process: Executor.sweep (one executor);
  5. in this process: a fresh Executor per picture (a queue whose worker keeps no cache between jobs).
Ratios: rows 1-2 (each counts its processes' start) to row 1; rows 3-5 (warm: no start counted) to
row 4. Seeds differ in every row and repetition, so no row reuses another's pictures; the order of
the five ways rotates from one repetition to the next, as the load of a shared machine drifts.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [shutil.which("latentgraph")] if shutil.which("latentgraph") else [sys.executable, "-m", "latentgraph"]


def run_cli(args: list, cwd: Path) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    started = time.perf_counter()
    done = subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"latentgraph {' '.join(map(str, args))} failed:\n{done.stderr}")
    return time.perf_counter() - started


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


class Server:
    def __init__(self, folder: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
        self.process = subprocess.Popen([*CLI, "serve", "--port", str(port), "--output", folder / "out",
                                         "--temp", folder / "temp", "--input", folder / "in", "--models",
                                         folder / "models"], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        started = time.perf_counter()
        while True:
            try:
                http("GET", f"{self.url}/api/queue")
                break
            except OSError:
                if self.process.poll() is not None or time.perf_counter() - started > 600:
                    raise SystemExit("latentgraph serve did not start") from None
                time.sleep(0.2)
        self.start_seconds = time.perf_counter() - started

    def run_jobs(self, workflows: list[dict]) -> float:
        started = time.perf_counter()
        ids = [http("POST", f"{self.url}/api/queue", {"workflow": wf})["job_id"] for wf in workflows]
        for job_id in ids:
            while http("GET", f"{self.url}/api/jobs/{job_id}")["status"] in ("pending", "running"):
                time.sleep(0.02)
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(120)


def with_seed(workflow: dict, seed: int) -> dict:
    copy = json.loads(json.dumps(workflow))
    copy["nodes"]["sampler"]["inputs"]["seed"] = seed
    return copy


def main(argv=None) -> int:
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", default=str(ROOT / "examples" / "txt2img.json"))
    parser.add_argument("--pictures", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    THREADS = args.threads

    import torch

    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings

    torch.set_num_threads(THREADS)
    base = json.loads(Path(args.workflow).read_text())
    folder = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    for name in ("in", "temp", "models"):
        (folder / name).mkdir()
    times: dict[str, list[float]] = {k: [] for k in ("sweep", "processes", "server", "api-sweep", "api-fresh")}

    def one_way(name: str, r: int) -> float:
        """Seconds for one way of making the pictures, in repetition r (seeds of its own)."""
        seeds = [args.pictures * (len(names) * r + names.index(name)) + n for n in range(args.pictures)]  # all distinct
        out = folder / f"r{r}-{name}"
        settings = Settings(models=folder / "models", output=out, temp=folder / "temp", input=folder / "in",
                            device="cpu")
        if name == "sweep":
            return run_cli(["run", args.workflow, "--sweep", f"sampler.seed={seeds[0]}..{seeds[-1]}", "--grid",
                            out / "grid.png", "--out", out, "--models", folder / "models", "--quiet"], folder)
        if name == "processes":
            return sum(run_cli(["run", args.workflow, "--set", f"sampler.seed={seed}", "--out", out, "--models",
                                folder / "models", "--quiet"], folder) for seed in seeds)
        if name == "server":
            return server.run_jobs([with_seed(base, seed) for seed in seeds])
        started = time.perf_counter()
        if name == "api-sweep":
            Executor(settings).sweep(base, {"axes": [{"input": "sampler.seed", "values": seeds}]})
        else:
            for seed in seeds:
                Executor(settings).run(with_seed(base, seed))
        return time.perf_counter() - started

    names = list(times)
    server = Server(folder)
    print(f"latentgraph serve started in {server.start_seconds:.1f}s (not counted)", flush=True)
    try:
        for r in range(args.repeats):
            order = names[r % len(names):] + names[:r % len(names)]  # rotated: the machine's load drifts
            for name in order:
                times[name].append(one_way(name, r))
            print(f"repetition {r + 1} ({' > '.join(order)}): " + ", ".join(f"{k} {v[-1]:.1f}s"
                                                                           for k, v in times.items()), flush=True)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    rows = [("sweep: one `latentgraph run --sweep` process (+ grid)", "sweep", "sweep"),
            (f"{args.pictures} `latentgraph run --set` processes", "processes", "sweep"),
            ("in process: `Executor.sweep`", "api-sweep", "api-sweep"),
            (f"{args.pictures} POSTs to a warm `latentgraph serve`", "server", "api-sweep"),
            (f"in process: a fresh Executor per picture ({args.pictures} runs)", "api-fresh", "api-sweep")]
    print(f"\n{args.pictures} pictures, {Path(args.workflow).name}, {args.repeats} repetitions, {THREADS} threads\n")
    print("| way | wall s (median) | range s | per picture s | vs sweep |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, key, reference in rows:
        median = statistics.median(times[key])
        ratio = median / statistics.median(times[reference])
        print(f"| {label} | {median:.2f} | {min(times[key]):.2f}–{max(times[key]):.2f} | "
              f"{median / args.pictures:.3f} | {ratio:.2f}× |")
    return 0


THREADS = 2

if __name__ == "__main__":
    sys.exit(main())
