"""The Ray worker pool on a local Ray runtime on the CPU: two workers with one torch thread each,
sharing one runtime for the module. CPU results depend on torch's thread count (some of these
seeds differ by one level in a few pixels between one thread and two), so the single-process
references are computed with the workers' one thread."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import ray
import torch
from helpers import txt2img
from test_server_api import wait_job

from latentgraph.graph.errors import Interrupted, NodeError
from latentgraph.graph.executor import Executor
from latentgraph.graph.ray_pool import RayPool
from latentgraph.graph.settings import Settings
from latentgraph.graph.sweep import plan_sweep
from latentgraph.server.app import create_app
from latentgraph.server.jobs import Job
from latentgraph.server.ray_runner import RayRunner

MODEL = "tiny-shapes"  # ships with the package: every worker finds it
THREADS = 1  # torch threads per worker, and for the references


def folders(root: Path) -> Settings:
    for name in ("input", "output", "temp", "models/checkpoints"):
        (root / name).mkdir(parents=True)
    # A checkpoint file that is not one: loading it fails on any worker.
    (root / "models" / "checkpoints" / "broken.safetensors").write_bytes(b"\0" * 64)
    return Settings(models=root / "models", input=root / "input", output=root / "output", temp=root / "temp",
                    device="cpu")


@pytest.fixture(scope="module")
def cluster():
    # Four logical CPUs: the pool's two workers, a replacement, and the command-line test's worker.
    ray.init(address="local", num_cpus=4, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(cluster, tmp_path_factory):
    pool = RayPool(folders(tmp_path_factory.mktemp("pool")), workers=2, threads=THREADS, previews=True)
    assert pool.wait_ready(300), "the workers did not start"
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The single-process reference: the same folders' models, its own output."""
    return Executor(folders(tmp_path_factory.mktemp("local")), previews=True)


def reference_png(local: Executor, workflow: dict) -> bytes:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        return Path(local.run(workflow).images[0]["path"]).read_bytes()
    finally:
        torch.set_num_threads(threads)


def run_sweep(pool: RayPool, workflows: list[dict], on_event=None):
    events: list[list[dict]] = [[] for _ in workflows]

    def record(index: int, event: dict) -> None:
        events[index].append(event)
        if on_event is not None:
            on_event(index, event)

    jobs = pool.enqueue([pool.prepare(w, lambda e, i=i: record(i, e)) for i, w in enumerate(workflows)])
    for job in jobs:
        assert job.done.wait(300), f"job {job.job_id} did not finish"
    return jobs, events


def test_a_six_job_sweep_on_two_workers_makes_the_single_process_pictures(pool, local):
    sweep = {"axes": [{"input": "pos.text", "values": ["a red circle", "a blue square"]},
                      {"input": "sampler.seed", "values": [1, 2, 3]}]}
    plan = plan_sweep(txt2img(MODEL), sweep, pool.settings)
    workflows = [job.workflow for job in plan.jobs]
    assert [job.values["pos.text"] for job in plan.jobs] == ["a red circle"] * 3 + ["a blue square"] * 3
    jobs, events = run_sweep(pool, workflows)

    for job, workflow, job_events in zip(jobs, workflows, events):
        assert job.status == "success", job.error
        result = job.wait()
        [image] = result.images
        path = Path(image["path"])
        assert path.parent == pool.settings.output and image["filename"] == path.name
        assert path.read_bytes() == reference_png(local, workflow)  # byte for byte
        # The events stream back as the executor sends them: each executed node, the sampler's
        # progress and live previews, the saved image as the driver's file.
        executed = [e["node_id"] for e in job_events if e["type"] == "executed" and not e["cached"]]
        assert executed == [r.node_id for r in result.report if r.status == "executed"]
        assert [e["step"] for e in job_events if e["type"] == "progress"] == list(range(1, 7))
        assert all(e["image"].startswith("data:image/jpeg;base64,")
                   for e in job_events if e["type"] == "preview")
        [saved] = [e for e in job_events if e["type"] == "executed" and e["node_id"] == "save"]
        assert saved["images"] == [{k: v for k, v in image.items() if k != "node_id"}]
    # Queued at once with both workers idle, the sweep starts on both, one prompt each.
    assert jobs[0].worker != jobs[3].worker
    assert {j.worker for j in jobs} == {w.name for w in pool.workers[:2]}
    report = pool.report()
    assert report["hit_rate"] > 0 and report["lost"] == []


def test_affinity_keeps_two_jobs_that_share_a_prompt_on_one_worker(pool):
    first = pool.submit(txt2img(MODEL, "a green triangle", seed=1))
    first.wait()
    placed_before = pool.report()["placed_with_affinity"]
    same_prompt, other_prompt = pool.enqueue([pool.prepare(txt2img(MODEL, "a green triangle", seed=2)),
                                              pool.prepare(txt2img(MODEL, "a yellow star", seed=1))])
    same_prompt.wait(), other_prompt.wait()

    assert same_prompt.worker == first.worker  # it holds the prompt's text encoding
    assert same_prompt.wait().status("pos") == "cached" and same_prompt.wait().status("ckpt") == "cached"
    assert other_prompt.worker != first.worker  # the other idle worker takes what the first does not hold
    report = pool.report()
    ran = {w["name"]: w["jobs"] for w in report["workers"]}
    assert first.job_id in ran[first.worker] and same_prompt.job_id in ran[first.worker]
    assert report["placed_with_affinity"] >= placed_before + 2
    holder = next(w for w in report["workers"] if w["name"] == first.worker)
    assert holder["models"] == [f"CheckpointLoaderSimple({MODEL})"] and holder["results"] > 0


def test_killing_a_worker_mid_sweep_loses_no_job(pool, local):
    workflows = [txt2img(MODEL, prompt, seed=seed, steps=8)
                 for prompt in ("a red circle", "a blue square") for seed in (11, 12, 13)]
    workers_before, lost_before = len(pool.workers), len(pool.report()["lost"])
    killed: dict = {}

    def kill_at_first_step(index: int, event: dict) -> None:
        if index == 1 and event["type"] == "progress" and not killed:
            worker = next(w for w in pool.workers if w.name == jobs_by_index[1].worker)
            killed.update(name=worker.name, pid=worker.info["pid"])
            os.kill(worker.info["pid"], signal.SIGKILL)  # a real crash, not ray.kill

    jobs_by_index: dict[int, object] = {}
    prepared = [pool.prepare(w, lambda e, i=i: kill_at_first_step(i, e)) for i, w in enumerate(workflows)]
    jobs_by_index.update(enumerate(prepared))
    pool.enqueue(prepared)
    for job in prepared:
        assert job.done.wait(300)

    assert killed, "the worker was not killed"
    for job, workflow in zip(prepared, workflows):
        assert job.status == "success", job.error
        assert Path(job.wait().images[0]["path"]).read_bytes() == reference_png(local, workflow)
    rerun = prepared[1]
    assert rerun.worker != killed["name"] and len(rerun.reruns) == 1 and killed["name"] in rerun.reruns[0]
    assert rerun.wait().to_json()["reruns"] == rerun.reruns
    report = pool.report()
    assert [(lost["worker"], lost["pid"]) for lost in report["lost"][lost_before:]] == [(killed["name"], killed["pid"])]
    assert report["reruns"][rerun.job_id] == rerun.reruns
    # A replacement was started; it serves like the others once it is up.
    assert len(pool.workers) == workers_before + 1 and pool.workers[-1].alive
    assert pool.wait_ready(300)
    assert sum(w.alive for w in pool.workers) == 2


def test_a_model_a_worker_cannot_load_fails_that_job_only(pool):
    good, broken, after = pool.enqueue([pool.prepare(txt2img(MODEL, "a red circle", seed=21)),
                                        pool.prepare(txt2img("broken.safetensors", "a red circle", seed=21)),
                                        pool.prepare(txt2img(MODEL, "a red circle", seed=22))])
    lost_before = len(pool.report()["lost"])
    with pytest.raises(NodeError) as failure:
        broken.wait(300)
    assert failure.value.error.node_id == "ckpt" and failure.value.error.node_type == "CheckpointLoaderSimple"
    assert "ckpt" in failure.value.error.message and broken.status == "error"
    assert good.wait(300).images and after.wait(300).images
    assert len(pool.report()["lost"]) == lost_before and sum(w.alive for w in pool.workers) == 2


def test_interrupt_stops_the_running_job_and_the_worker_keeps_serving(pool):
    asked = threading.Event()
    events: list[dict] = []

    def interrupt_at_first_step(event: dict) -> None:
        events.append(event)
        if event["type"] == "progress" and not asked.is_set():
            asked.set()
            assert pool.interrupt(job.job_id)

    job = pool.prepare(txt2img(MODEL, "a long one", seed=5, steps=40), interrupt_at_first_step)
    pool.enqueue([job])
    with pytest.raises(Interrupted) as stopped:
        job.wait(300)
    assert job.status == "interrupted" and stopped.value.result.status("sampler") is None
    assert events[-1]["type"] == "interrupted" and len([e for e in events if e["type"] == "progress"]) < 40
    assert pool.submit(txt2img(MODEL, "a long one", seed=5, steps=2)).wait(300).images

    # A job not started yet is cancelled instead.
    busy = [pool.prepare(txt2img(MODEL, "a red circle", seed=s, steps=20)) for s in (31, 32)]
    waiting = pool.prepare(txt2img(MODEL, "a red circle", seed=33))
    pool.enqueue([*busy, waiting])
    assert pool.cancel(waiting.job_id) and waiting.status == "cancelled"
    for job in busy:
        job.wait(300)


def test_the_command_runs_workflows_and_sweeps_on_the_cluster_and_imports_ray_only_with_the_flag(cluster, tmp_path):
    settings = folders(tmp_path)
    for i, seed in enumerate((41, 42)):
        (tmp_path / f"wf{i}.json").write_text(json.dumps(txt2img(MODEL, "a red circle", seed=seed)))
    script = f"""
import sys
import torch
from latentgraph.cli import main
torch.set_num_threads({THREADS})  # the worker's threads: CPU results depend on the count
common = ["--models", {str(settings.models)!r}, "--quiet"]
ray = ["--ray", {cluster!r}, "--workers", "1", "--worker-threads", "{THREADS}"]
sweep = ["wf0.json", "--sweep", "sampler.seed=43,44", "--sweep", "pos.text=a red circle,a blue square"]
assert main(["run", "wf0.json", "wf1.json", *common, "--out", "local"]) == 0
assert main(["run", *sweep, *common, "--out", "local-sweep"]) == 0
assert "ray" not in sys.modules, "ray was imported without --ray"
assert main(["run", "wf0.json", "wf1.json", *common, "--out", "cluster", "--report", "report.json", *ray]) == 0
assert main(["run", *sweep, *common, "--out", "cluster-sweep", "--report", "sweep.json", *ray]) == 0
assert "ray" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for here, there, count in (("local", "cluster", 2), ("local-sweep", "cluster-sweep", 4)):
        local, remote = sorted((tmp_path / here).iterdir()), sorted((tmp_path / there).iterdir())
        names = [f"test_{n:05d}_.png" for n in range(1, count + 1)]
        assert [p.name for p in local] == [p.name for p in remote] == names
        assert [p.read_bytes() for p in local] == [p.read_bytes() for p in remote]
    runs = json.loads((tmp_path / "report.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["success", "success"] and {r["worker"] for r in runs} == {"w1"}
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["status"] for r in sweep["runs"]] == ["success"] * 4 and {r["worker"] for r in sweep["runs"]} == {"w1"}
    assert sweep["totals"]["nodes"]["pos"] == {"executed": 2, "cached": 2, "error": 0}  # once per prompt
    assert "ray: 2 job(s) done (w1: 2)" in done.stderr and "ray: 4 job(s) done (w1: 4)" in done.stderr


@pytest.mark.asyncio
async def test_the_server_runs_its_queue_and_sweeps_on_the_pool(pool, local, aiohttp_client):
    runner = RayRunner(pool)
    runner.close = lambda: None  # the module's pool outlives this server
    # Two free slots take the first job of each prompt (each reserved on an idle worker); the
    # second job of the first prompt waits for the worker that encodes that prompt.
    sweep = {"axes": [{"input": "pos.text", "values": ["an orange hexagon", "a purple heart"]},
                      {"input": "sampler.seed", "values": [51, 52]}]}
    plan = plan_sweep(txt2img(MODEL), sweep, pool.settings)
    pending = [Job(f"pick-{job.index}", job.workflow) for job in plan.jobs]
    first = runner.pick(pending)
    second = runner.pick([job for job in pending if job is not first])
    assert (first, second) == (pending[0], pending[2])
    held = {w.name for w in pool.workers if w.job is not None and w.job.held}
    assert len(held) == 2  # one job reserved on each worker
    for job in (first, second):
        runner.interrupt(job)  # a reserved job is cancelled
    assert not any(w.job is not None for w in pool.workers)

    client = await aiohttp_client(create_app(pool.settings, runner=runner))
    ws = await client.ws_connect("/ws")
    await ws.receive_json(timeout=5)  # the queue greeting
    response = await client.post("/api/sweep", json={"workflow": txt2img(MODEL), "sweep": sweep})
    assert response.status == 200, await response.text()
    queued = await response.json()
    events, workers_seen = [], set()
    while not events or events[-1]["type"] != "sweep_finished":
        events.append(await ws.receive_json(timeout=120))
        running = (await (await client.get("/api/queue")).json())["running_jobs"]
        workers_seen |= {job["worker"] for job in running if job["worker"]}
    for job_id, planned in zip(queued["job_ids"], plan.jobs):
        job = await (await client.get(f"/api/jobs/{job_id}")).json()
        assert job["status"] == "success" and job["worker"] in {w.name for w in pool.workers}
        [image] = job["images"]
        served = await client.get(image["url"])
        assert await served.read() == reference_png(local, planned.workflow)
        mine = [e for e in events if e["job_id"] == job_id and not e["type"].startswith("sweep_")]
        kinds = [e["type"] for e in mine]
        assert kinds[0] == "started" and kinds[-1] == "finished" and "progress" in kinds and "preview" in kinds
        assert [e["images"] for e in mine if e["type"] == "executed" and e["node_id"] == "save"] == [[image]]
    assert workers_seen and workers_seen <= {w.name for w in pool.workers}  # the queue names each job's worker
    assert events[-1]["counts"] == {"success": 4} and events[-1]["grid"]["url"]

    # Interrupt reaches the job on its worker.
    long = await (await client.post("/api/queue", json={"workflow": txt2img(MODEL, seed=53, steps=200)})).json()
    while (await ws.receive_json(timeout=120))["type"] != "progress":
        pass
    assert (await (await client.post("/api/interrupt", json={"job_id": long["job_id"]})).json()) == {
        "interrupted": long["job_id"]}
    job = await wait_job(client, long["job_id"])
    assert job["status"] == "interrupted" and job["nodes"].get("sampler") is None
