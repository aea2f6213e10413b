"""Sweeps over HTTP, idempotent ids and webhooks (issue 20), with cheap image-only graphs: one POST
queues a sweep, its events follow it, the grid is served and reopens as workflow and sweep; bad
sweeps are refused naming axis and value; a webhook is called once."""
from __future__ import annotations

import asyncio
import io

import pytest
import pytest_asyncio
from aiohttp import FormData, web
from PIL import Image
from test_job_queue import GateRunner
from test_server_api import wait_job

from latentgraph.server.app import create_app
from latentgraph.server.runner import LocalRunner

pytestmark = pytest.mark.asyncio
COLORS = [0x202020, 0x808080, 0xE0E0E0]
RADII = [1, 2]


def image_graph(color: int = 0x336699, radius: int = 1) -> dict:
    def ref(node, output="IMAGE"):
        return {"node": node, "output": output}
    return {"format": "latentgraph", "version": 2, "nodes": {
        "img": {"type": "EmptyImage", "title": "Canvas",
                "inputs": {"width": 24, "height": 16, "batch_size": 1, "color": color}},
        "blur": {"type": "ImageBlur", "inputs": {"image": ref("img"), "blur_radius": radius, "sigma": 1.0}},
        "save": {"type": "SaveImage", "inputs": {"images": ref("blur"), "filename_prefix": "sweep"}}}}


SWEEP = {"axes": [{"input": "blur.blur_radius", "values": RADII}, {"input": "Canvas.color", "values": COLORS,
                                                                    "labels": ["dark", "grey", "light"]}]}


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def events_until(ws, done, timeout: float = 60) -> list[dict]:
    events = []
    while True:
        event = await ws.receive_json(timeout=timeout)
        events.append(event)
        if done(event):
            return events


async def test_one_post_queues_a_whole_sweep_its_events_follow_it_and_its_grid_is_served(client):
    ws = await client.ws_connect("/ws")
    await ws.receive_json(timeout=5)  # the queue greeting
    response = await client.post("/api/sweep", json={"workflow": image_graph(), "sweep": SWEEP, "client_id": "tab"})
    assert response.status == 200, await response.text()
    queued = await response.json()
    sweep_id, job_ids = queued["sweep_id"], queued["job_ids"]
    assert len(job_ids) == 6 and queued["position"] == 0 and queued["total"] == 6 and not queued["duplicate"]
    assert queued["axes"] == [{"name": "blur.blur_radius", "labels": ["1", "2"]},
                              {"name": "Canvas.color", "labels": ["dark", "grey", "light"]}]
    # The colour feeds every node, the radius only the blur and the save: the colour varies slowest.
    assert [job["values"]["Canvas.color"] for job in queued["jobs"]] == [c for c in COLORS for _ in RADII]
    assert [job["coords"] for job in queued["jobs"]][:3] == [[0, 0], [1, 0], [0, 1]]

    events = await events_until(ws, lambda e: e["type"] == "sweep_finished")
    assert events[0] == {"type": "sweep_queued", "job_id": None, "sweep_id": sweep_id, "client_id": "tab",
                         "job_ids": job_ids, "total": 6, "position": 0}
    assert [e["job_id"] for e in events if e["type"] == "started"] == job_ids  # in run order
    assert all(e["sweep_id"] == sweep_id and e["status"] == "success" for e in events if e["type"] == "finished")
    assert [e["done"] for e in events if e["type"] == "sweep_progress"] == [1, 2, 3, 4, 5, 6]
    finished = events[-1]
    assert finished["counts"] == {"success": 6} and finished["grid"]["url"] == f"/api/images/{finished['grid']['id']}"

    grid = await client.get(finished["grid"]["url"])
    assert grid.status == 200 and grid.content_type == "image/png"
    data = await grid.read()
    with Image.open(io.BytesIO(data)) as sheet:
        assert sheet.width > 2 * 24 and sheet.height > 3 * 16
    form = FormData()
    form.add_field("file", data, filename="grid.png", content_type="image/png")
    reopened = await (await client.post("/api/import", data=form)).json()
    assert reopened["workflow"]["nodes"] == image_graph()["nodes"]
    assert reopened["sweep"]["axes"][1]["inputs"] == {"Canvas.color": COLORS}

    state = await (await client.get(f"/api/sweeps/{sweep_id}")).json()
    assert state["status"] == "finished" and state["counts"] == {"success": 6} and state["grid"] == finished["grid"]
    assert [job["status"] for job in state["jobs"]] == ["success"] * 6
    assert all(len(job["images"]) == 1 for job in state["jobs"])
    listed = (await (await client.get("/api/sweeps")).json())["sweeps"]
    assert [s["sweep_id"] for s in listed] == [sweep_id] and "jobs" not in listed[0]
    assert (await client.get("/api/sweeps/nope")).status == 404
    api = await (await client.get("/api/openapi.json")).json()
    assert api["paths"]["/api/sweep"]["post"]["responses"]["400"] and "delete" in api["paths"]["/api/sweeps/{sweep_id}"]
    assert {"Sweep", "SweepState", "SweepJob"} <= set(api["components"]["schemas"])
    job = await (await client.get(f"/api/jobs/{job_ids[0]}")).json()
    assert job["sweep_id"] == sweep_id and job["sweep_job"] == 0 and job["workflow"]["nodes"]["img"]["inputs"][
        "color"] == COLORS[0]


async def test_bad_sweeps_are_refused_naming_axis_and_value_and_nothing_is_queued(client):
    bad = {"axes": [{"input": "blur.blur_radius", "values": [1, 99]},
                    {"inputs": {"img.color": [1, 2], "img.width": [8]}},
                    {"input": "nowhere.x", "values": [1]}]}
    response = await client.post("/api/sweep", json={"workflow": image_graph(), "sweep": bad})
    assert response.status == 400
    body = await response.json()
    assert "sweep axis 1 (blur.blur_radius), value 2 (99)" in body["error"]
    assert {(e["kind"], e["axis"], e["value"], e["input"]) for e in body["errors"]} == {
        ("out_of_range", 0, 1, "blur_radius"), ("unequal_lengths", 1, None, None), ("unknown_node", 2, None, None)}

    too_many = {"axes": [{"input": "img.color", "values": list(range(101))},
                         {"input": "img.width", "values": list(range(1, 101))}]}
    response = await client.post("/api/sweep", json={"workflow": image_graph(), "sweep": too_many})
    assert response.status == 400 and (await response.json())["errors"][0]["kind"] == "too_many_jobs"
    for body in ({"workflow": "/etc/passwd", "sweep": SWEEP}, {"workflow": image_graph(), "sweep": "x"},
                 {"workflow": image_graph(), "sweep": SWEEP, "sweep_id": "../x"},
                 {"workflow": image_graph(), "sweep": SWEEP, "callback_url": "http://example.com/hook"}, ["no"]):
        assert (await client.post("/api/sweep", json=body)).status == 400, body
    queue = await (await client.get("/api/queue")).json()  # with ComfyUI's keys beside ours
    assert (queue["running"], queue["running_jobs"], queue["pending"], queue["queue_pending"]) == (None, [], [], [])
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []
    assert (await (await client.get("/api/sweeps")).json())["sweeps"] == []


async def test_a_client_id_queued_twice_is_one_job_and_a_sweep_id_one_sweep(client):
    first = await (await client.post("/api/queue", json={"workflow": image_graph(), "job_id": "render-1"})).json()
    second = await (await client.post("/api/queue", json={"workflow": image_graph(7), "job_id": "render-1"})).json()
    assert first["job_id"] == second["job_id"] == "render-1" and (first["duplicate"], second["duplicate"]) == (
        False, True)
    job = await wait_job(client, "render-1")
    assert job["status"] == "success" and job["workflow"]["nodes"]["img"]["inputs"]["color"] == 0x336699
    again = await (await client.post("/api/queue", json={"job_id": "render-1"})).json()  # ended: still the answer
    assert again == {"job_id": "render-1", "position": None, "duplicate": True}
    assert (await client.post("/api/queue", json={"workflow": image_graph(), "job_id": "a b"})).status == 400

    body = {"workflow": image_graph(), "sweep": {"axes": [{"input": "img.color", "values": [1, 2]}]}, "sweep_id": "s1"}
    one = await (await client.post("/api/sweep", json=body)).json()
    two = await (await client.post("/api/sweep", json=body)).json()
    assert one["job_ids"] == two["job_ids"] == ["s1.0", "s1.1"] and two["duplicate"]
    for job_id in one["job_ids"]:
        await wait_job(client, job_id)
    history = (await (await client.get("/api/jobs")).json())["jobs"]
    assert sorted(j["job_id"] for j in history) == ["render-1", "s1.0", "s1.1"]


async def test_webhooks_are_posted_once_to_loopback(aiohttp_client, aiohttp_server, settings):
    received: list[dict] = []
    arrived = asyncio.Event()

    async def hook(request):
        received.append(await request.json())
        arrived.set()
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    url = str(server.make_url("/hook"))
    client = await aiohttp_client(create_app(settings))

    job_id = (await (await client.post("/api/queue", json={"workflow": image_graph(), "callback_url": url})).json())[
        "job_id"]
    await wait_job(client, job_id)
    await asyncio.wait_for(arrived.wait(), 30)
    # Another job (without a callback) ends; the first one's webhook was still called just once.
    await wait_job(client, (await (await client.post("/api/queue", json={"workflow": image_graph(5)})).json())[
        "job_id"])
    assert len(received) == 1 and received[0]["type"] == "job_finished"
    assert received[0]["job"]["job_id"] == job_id and received[0]["job"]["status"] == "success"
    assert "workflow" not in received[0]["job"]
    for _ in range(500):  # the outcome is recorded on the job after the POST answered
        recorded = (await (await client.get(f"/api/jobs/{job_id}")).json())["callback"]
        if recorded:
            break
        await asyncio.sleep(0.02)
    assert recorded["status"] == 200

    arrived.clear()
    sweep = {"workflow": image_graph(), "sweep": {"axes": [{"input": "img.color", "values": [1, 2]}]},
             "callback_url": url}
    await client.post("/api/sweep", json=sweep)
    await asyncio.wait_for(arrived.wait(), 30)
    assert len(received) == 2 and received[1]["type"] == "sweep_finished"
    assert received[1]["sweep"]["counts"] == {"success": 2} and received[1]["sweep"]["grid"]["url"]

    refused = await client.post("/api/queue", json={"workflow": image_graph(), "callback_url": "http://10.0.0.1/x"})
    assert refused.status == 400 and "--allow-callback-hosts" in (await refused.json())["error"]
    allowed = await aiohttp_client(create_app(settings, callback_hosts=("hooks.example",)))
    assert (await allowed.post("/api/queue", json={"workflow": image_graph(9), "callback_url":
                                                   "https://hooks.example/x"})).status == 200


class HoldingRunner(LocalRunner):
    """The real executor, except that the job named `held` waits for an interrupt."""

    def __init__(self, executor, held: str):
        super().__init__(executor)
        self.gate = GateRunner(hold={held})

    def run(self, job, on_event):
        return self.gate.run(job, on_event) if job.job_id in self.gate.hold else super().run(job, on_event)

    def interrupt(self, job):
        self.gate.interrupt(job)
        super().interrupt(job)


async def test_cancelling_a_sweep_cancels_its_pending_jobs_with_the_reason(aiohttp_client, settings):
    from latentgraph.graph.executor import Executor

    app = create_app(settings, runner=HoldingRunner(Executor(settings), held="blocker"))
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    await client.post("/api/queue", json={"workflow": image_graph(), "job_id": "blocker"})
    queued = await (await client.post("/api/sweep", json={"workflow": image_graph(), "sweep": SWEEP})).json()
    assert queued["position"] == 1
    cancelled = await (await client.delete(f"/api/sweeps/{queued['sweep_id']}")).json()
    assert cancelled == {"cancelled": queued["job_ids"]}
    events = await events_until(ws, lambda e: e["type"] == "sweep_finished")
    assert events[-1]["counts"] == {"cancelled": 6} and events[-1]["grid"] is None
    job = await (await client.get(f"/api/jobs/{queued['job_ids'][0]}")).json()
    assert job["status"] == "cancelled" and "sweep was cancelled" in job["errors"][0]["message"]
    assert (await (await client.post("/api/interrupt")).json()) == {"interrupted": "blocker"}
    assert (await wait_job(client, "blocker"))["status"] == "interrupted"
    assert (await client.delete("/api/sweeps/nope")).status == 404
