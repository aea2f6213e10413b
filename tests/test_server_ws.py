"""Websocket events: their order for a run and a cached re-run, several tabs, interrupting a
sampler mid-way, and a failing node that leaves the server serving and the cache intact."""
from __future__ import annotations

import pytest
import pytest_asyncio
from helpers import txt2img

from latentgraph.server.app import create_app

pytestmark = pytest.mark.asyncio
TXT2IMG_NODES = ["ckpt", "latent", "neg", "pos", "sampler", "decode", "save"]  # the executor's order


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def connect(client):
    ws = await client.ws_connect("/ws")
    greeting = await ws.receive_json(timeout=5)
    assert greeting == {"type": "queue", "job_id": None, "running": 0, "pending": 0}
    return ws


async def queue(client, workflow: dict) -> str:
    response = await client.post("/api/queue", json={"workflow": workflow})
    assert response.status == 200, await response.text()
    return (await response.json())["job_id"]


async def job_events(ws, job_id: str, timeout: float = 120) -> list[dict]:
    """The job's events up to and including `finished` (queue-count events left out)."""
    events = []
    while True:
        event = await ws.receive_json(timeout=timeout)
        if event["job_id"] == job_id:
            events.append(event)
            if event["type"] == "finished":
                return events


def kinds(events: list[dict]) -> list[tuple]:
    """(type, node) pairs, with progress and preview events folded away."""
    return [(e["type"], e.get("node_id")) for e in events if e["type"] not in ("progress", "preview")]


async def test_events_of_a_run_then_of_a_cached_rerun_then_after_one_edit(client):
    ws = await connect(client)
    job = await queue(client, txt2img(steps=2))
    events = await job_events(ws, job)

    assert events[0] == {"type": "queued", "job_id": job, "position": 0, "client_id": None}
    expected = [("queued", None), ("started", None)]
    for node in TXT2IMG_NODES:
        expected += [("executing", node), ("executed", node)]
    assert kinds(events) == expected + [("finished", None)]
    assert events[-1]["status"] == "success"

    progress = [(e["step"], e["total"]) for e in events if e["type"] == "progress"]
    assert progress == [(1, 2), (2, 2)]
    sampler = [e["type"] for e in events if e.get("node_id") == "sampler"]
    assert sampler[0] == "executing" and sampler[-1] == "executed" and "preview" in sampler
    preview = next(e for e in events if e["type"] == "preview")
    assert preview["image"].startswith("data:image/jpeg;base64,")
    [image] = next(e for e in events if e["type"] == "executed" and e["node_id"] == "save")["images"]
    assert set(image) >= {"id", "node_id", "url"} and "path" not in image
    assert (await client.get(image["url"])).status == 200

    # Nothing changed: every node comes from the cache, the saved image is shown again.
    again = await job_events(ws, await queue(client, txt2img(steps=2)))
    assert kinds(again) == [("queued", None), ("started", None), ("cached", None), ("executed", "save"),
                            ("finished", None)]
    assert again[2]["node_ids"] == TXT2IMG_NODES
    assert again[3]["cached"] is True and again[3]["images"] == [image]  # the same file, the same id

    # One widget edited: only that node and what is downstream of it run.
    edited = await job_events(ws, await queue(client, txt2img(steps=2, seed=9)))
    assert [e["node_id"] for e in edited if e["type"] == "executing"] == ["sampler", "decode", "save"]
    assert next(e for e in edited if e["type"] == "cached")["node_ids"] == ["ckpt", "latent", "neg", "pos"]
    await ws.close()


async def test_several_tabs_see_the_same_events(client):
    first, second = await connect(client), await connect(client)
    job = await queue(client, txt2img(steps=1))
    seen_first, seen_second = await job_events(first, job), await job_events(second, job)
    assert seen_first == seen_second and seen_first[-1]["status"] == "success"
    await first.close()
    # A tab that left does not disturb the others.
    job = await queue(client, txt2img(steps=1, seed=5))
    assert (await job_events(second, job))[-1]["status"] == "success"
    await second.close()


async def test_interrupt_mid_sampling(client):
    ws = await connect(client)
    job = await queue(client, txt2img(steps=1000))
    while True:  # wait until the sampler is under way
        event = await ws.receive_json(timeout=120)
        if event["type"] == "progress" and event["step"] >= 2:
            break
    answer = await (await client.post("/api/interrupt")).json()
    assert answer == {"interrupted": job}
    rest = await job_events(ws, job)
    assert [e["type"] for e in rest if e["type"] not in ("progress", "preview")] == ["interrupted", "finished"]
    assert rest[-1]["status"] == "interrupted"
    assert all(e["step"] < 1000 for e in rest if e["type"] == "progress")

    history = await (await client.get(f"/api/jobs/{job}")).json()
    assert history["status"] == "interrupted" and history["nodes"]["ckpt"]["status"] == "executed"
    # The server goes on, and what ran before the sampler is still cached.
    events = await job_events(ws, await queue(client, txt2img(steps=2)))
    assert events[-1]["status"] == "success"
    assert next(e for e in events if e["type"] == "cached")["node_ids"] == ["ckpt", "latent", "neg", "pos"]
    await ws.close()


async def test_failing_node_sends_an_error_and_keeps_server_and_cache(client, settings):
    ws = await connect(client)
    failing = txt2img(steps=2)
    failing["nodes"]["save"]["inputs"]["filename_prefix"] = "../outside"  # refused when the node runs
    events = await job_events(ws, await queue(client, failing))

    assert kinds(events)[-3:] == [("executing", "save"), ("error", "save"), ("finished", None)]
    error = events[-2]
    assert (error["kind"], error["node_id"], error["node_type"], error["input"]) == \
        ("execution", "save", "SaveImage", "filename_prefix")
    assert "output folder" in error["message"]
    assert events[-1]["status"] == "error"
    assert not list(settings.output.parent.glob("outside*"))

    # Still serving; the next run re-uses everything computed before the failure.
    assert (await client.get("/api/nodes")).status == 200
    events = await job_events(ws, await queue(client, txt2img(steps=2)))
    assert events[-1]["status"] == "success"
    assert next(e for e in events if e["type"] == "cached")["node_ids"] == TXT2IMG_NODES[:-1]
    assert [e["node_id"] for e in events if e["type"] == "executing"] == ["save"]
    await ws.close()


async def test_queue_events_follow_the_queue(client):
    ws = await connect(client)
    job = await queue(client, txt2img(steps=1))
    counts = []
    while True:
        event = await ws.receive_json(timeout=120)
        if event["type"] == "queue":
            counts.append((event["running"], event["pending"]))
        if event["type"] == "finished" and event["job_id"] == job:
            break
    assert counts == [(0, 1), (1, 0)]
    assert await ws.receive_json(timeout=5) == {"type": "queue", "job_id": None, "running": 0, "pending": 0}
    await ws.close()
