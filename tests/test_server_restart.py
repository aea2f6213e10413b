"""A real `latentgraph serve` stopped during the third of 20 queued jobs, by `kill -9` or by
SIGTERM, then started again (issue 20): the remaining jobs run in their order without being queued
again, none is lost, none runs twice; the job that was running is `interrupted` with the reason.

The jobs are cheap image-only graphs that each save a file named after the job, so the output
folder counts how many times each ran; the third samples 10,000 steps with the tiny model, so it is
surely running when the server is stopped (the test waits for it to be, from the history)."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest
from helpers import txt2img

pytestmark = pytest.mark.asyncio
JOBS = 20
LONG = 2  # the third job
CLI = shutil.which("latentgraph")


def job_workflow(n: int) -> dict:
    if n == LONG:
        workflow = txt2img(steps=10_000, seed=n)
        workflow["nodes"]["save"]["inputs"]["filename_prefix"] = f"job{n:02d}"
        return workflow
    return {"format": "latentgraph", "version": 2, "nodes": {
        "img": {"type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": n}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "img", "output": "IMAGE"},
                                                 "filename_prefix": f"job{n:02d}"}}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, settings, port: int, *flags: str):
        command = [CLI] if CLI else [sys.executable, "-m", "latentgraph"]
        folders = ["--models", settings.models, "--input", settings.input, "--output", settings.output,
                   "--temp", settings.temp, "--device", "cpu"]
        env = dict(os.environ, OMP_NUM_THREADS="2")
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(settings.output.parent / f"serve-{port}-{time.monotonic_ns()}.log", "w")
        self.process = subprocess.Popen([*command, "serve", "--port", str(port), *map(str, folders), *flags],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            try:
                async with session.get(f"{self.url}/api/queue") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("the server did not start")

    def stop(self, sig) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(120)
        self.log.close()
        return code


async def job(session, server, job_id: str) -> dict:
    async with session.get(f"{server.url}/api/jobs/{job_id}") as response:
        return await response.json()


async def wait_for(session, server, job_id: str, statuses: tuple, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = await job(session, server, job_id)
        if doc.get("status") in statuses:
            return doc
        await asyncio.sleep(0.02)
    raise AssertionError(f"{job_id} never became {statuses}")


async def stop_during_the_third_job_and_restart(settings, sig) -> tuple[dict, list[dict]]:
    port = free_port()
    ids = [f"job-{n:02d}" for n in range(JOBS)]
    async with aiohttp.ClientSession() as session:
        first = Server(settings, port)
        try:
            await first.ready(session)
            ws = await session.ws_connect(f"{first.url}/ws")
            for n, job_id in enumerate(ids):
                async with session.post(f"{first.url}/api/queue", json={"workflow": job_workflow(n),
                                                                        "job_id": job_id}) as response:
                    assert response.status == 200, await response.text()
            running = await wait_for(session, first, ids[LONG], ("running",))
            assert running["attempts"] == 1
            events = []
            if sig == signal.SIGTERM:  # the clients hear of it before the websocket closes
                code = first.stop(sig)
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        events.append(message.json())
                assert code == 0
            else:
                first.stop(sig)
        finally:
            if first.process.poll() is None:
                first.process.kill()
        await ws.close()

        second = Server(settings, port)
        try:
            await second.ready(session)
            last = await wait_for(session, second, ids[-1], ("success", "error"))
            assert last["status"] == "success"
            docs = [await job(session, second, job_id) for job_id in ids]
            async with session.get(f"{second.url}/api/jobs?limit=100") as response:
                listed = (await response.json())["jobs"]
        finally:
            second.stop(signal.SIGTERM)
    assert sorted(doc["job_id"] for doc in listed) == ids  # none lost, none added
    return {"docs": docs, "events": events}, listed


def check_resumed_in_order(settings, docs: list[dict], reason: str) -> None:
    interrupted = docs[LONG]
    assert interrupted["status"] == "interrupted" and interrupted["attempts"] == 1
    assert reason in interrupted["errors"][0]["message"] and interrupted["errors"][0]["kind"] == "interrupted"
    others = [doc for n, doc in enumerate(docs) if n != LONG]
    assert [doc["status"] for doc in others] == ["success"] * (JOBS - 1)
    assert all(doc["attempts"] == 1 for doc in others)  # none ran twice
    after = docs[LONG + 1:]
    assert [doc["started"] for doc in after] == sorted(doc["started"] for doc in after)  # in their order
    assert after[0]["started"] > interrupted["started"] > docs[LONG - 1]["finished"]
    for n in range(JOBS):  # each job's own file: one per job that ran to its end
        assert len(list(settings.output.glob(f"job{n:02d}_*.png"))) == (0 if n == LONG else 1), n


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_kill_9_during_the_third_job_loses_nothing_and_runs_nothing_twice(settings):
    result, _ = await stop_during_the_third_job_and_restart(settings, signal.SIGKILL)
    check_resumed_in_order(settings, result["docs"], "crashed or was killed")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_sigterm_during_the_third_job_tells_the_clients_and_loses_nothing(settings):
    result, _ = await stop_during_the_third_job_and_restart(settings, signal.SIGTERM)
    check_resumed_in_order(settings, result["docs"], "shut down")
    events = result["events"]
    ended = next(e for e in events if e["type"] == "finished" and e["job_id"] == f"job-{LONG:02d}")
    assert ended["status"] == "interrupted" and "shut down" in ended["errors"][0]["message"]
    shutdown = events[-1]
    assert shutdown["type"] == "shutdown" and shutdown["interrupted"] == [f"job-{LONG:02d}"]
    assert shutdown["pending"] == [f"job-{n:02d}" for n in range(LONG + 1, JOBS)]
