"""The server with subgraphs: jobs and websocket events name inner nodes by path, a broken inner
node is refused with HTTP 400 naming it, the components library, and checkpoint details."""
from __future__ import annotations

import json
from urllib.parse import quote

import numpy as np
import pytest
import pytest_asyncio
from safetensors.numpy import save_file
from test_server_ws import connect, job_events, queue
from test_subgraphs import generate, nested, pipeline, upscale

from latentgraph.nodes import checkpoint_info
from latentgraph.server.app import create_app

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def test_a_subgraph_job_reports_inner_nodes_by_path(client):
    ws = await connect(client)
    job_id = await queue(client, nested())
    events = await job_events(ws, job_id)
    assert events[-1]["status"] == "success"
    executed = [e["node_id"] for e in events if e["type"] == "executed"]
    assert "5/1/sampler" in executed and "5/2/2" in executed and executed[-1] == "save"
    assert {e["node_id"] for e in events if e["type"] == "progress"} == {"5/1/sampler"}
    job = await (await client.get(f"/api/jobs/{job_id}")).json()
    assert job["nodes"]["5/2/1"]["status"] == "executed" and job["images"][0]["node_id"] == "save"
    assert job["workflow"]["subgraphs"].keys() == {"pipeline", "generate", "upscale"}  # kept as queued


async def test_a_broken_inner_node_is_refused_with_its_path(client):
    workflow = nested()
    workflow["subgraphs"]["generate"]["nodes"]["sampler"]["inputs"]["steps"] = 0
    workflow["nodes"]["5"]["inputs"]["scale_by"] = 100
    response = await client.post("/api/queue", json={"workflow": workflow})
    assert response.status == 400
    body = await response.json()
    assert [(e["node_id"], e["input"]) for e in body["errors"]] == [("5/1/sampler", "steps"), ("5", "scale_by")]
    assert "KSampler '5/1/sampler', input 'steps'" in body["errors"][0]["message"]
    assert "(inside: ImageScaleBy '5/2/1', input 'scale_by')" in body["errors"][1]["message"]
    validated = await (await client.post("/api/validate", json={"workflow": workflow})).json()
    assert validated["valid"] is False and validated["errors"] == body["errors"]


async def test_components_library_save_list_get_delete(client, settings):
    assert await (await client.get("/api/components")).json() == {"components": []}
    answer = await client.put("/api/components/Upscale (v1)", json={"definition": upscale()})
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["name"] == "Upscale (v1)"
    listing = (await (await client.get("/api/components")).json())["components"]
    assert [e["name"] for e in listing] == ["Upscale (v1)"] and listing[0]["modified"] > 0
    got = await (await client.get("/api/components/Upscale (v1)")).json()
    assert got == {"name": "Upscale (v1)", "definition": upscale()}
    assert (settings.output.parent / "components" / "Upscale (v1).json").is_file()  # beside output

    # A component made of others carries them; one that does not, or that contains itself, is refused.
    carried = {**pipeline(), "subgraphs": {"generate": generate(), "upscale": upscale()}}
    assert (await client.put("/api/components/Pipeline", json={"definition": carried})).status == 200
    refused = await client.put("/api/components/Pipeline", json={"definition": pipeline()})
    assert refused.status == 400
    body = await refused.json()
    assert body["errors"][0]["kind"] == "unknown_type" and "'generate'" in body["error"]
    looping = {**upscale(), "subgraphs": {"inner": {"nodes": {"x": {"type": "Subgraph", "subgraph": "Loop"}}}}}
    looping["nodes"]["3"] = {"type": "Subgraph", "subgraph": "inner"}
    body = await (await client.put("/api/components/Loop", json={"definition": looping})).json()
    assert body["errors"][0]["kind"] == "cycle"
    for bad in ({"definition": {"nodes": []}}, {"definition": "x"}, {"nodes": {}}, ["definition"]):
        assert (await client.put("/api/components/bad", json=bad)).status == 400
    assert (await client.put("/api/components/bad", data=b"{not json")).status == 400
    assert not (settings.output.parent / "components" / "bad.json").exists()

    for name in ("..", ".hidden", "a..b", "x" * 101, "tail.", "%2e%2e%2fescape", "back\\slash"):
        response = await client.put(f"/api/components/{quote(name, safe='%')}", json={"definition": upscale()})
        assert 400 <= response.status < 500, name  # ".." never reaches the handler: 405
    assert sorted(p.name for p in (settings.output.parent / "components").iterdir()) == [
        "Pipeline.json", "Upscale (v1).json"]

    assert (await client.delete("/api/components/Upscale (v1)")).status == 200
    assert (await client.get("/api/components/Upscale (v1)")).status == 404
    assert (await client.delete("/api/components/Upscale (v1)")).status == 404
    doc = await (await client.get("/api/openapi.json")).json()
    assert {"get", "put", "delete"} <= set(doc["paths"]["/api/components/{name}"])


async def test_checkpoints_come_with_family_and_native_resolution(client):
    answer = await (await client.get("/api/checkpoints")).json()
    assert {"tiny-shapes", "tiny-sd15"} <= set(answer["checkpoints"])
    # tiny-shapes: UNet sample_size 16, three VAE levels (x4); the random tiny SD1.5: 32 and two (x2)
    assert answer["details"]["tiny-shapes"] == {"family": "sd15", "resolution": [64, 64]}
    assert answer["details"]["tiny-sd15"] == {"family": "sd15", "resolution": [64, 64]}


async def test_single_file_checkpoints_are_told_from_their_header(tmp_path):
    tiny = np.zeros(1, dtype=np.float16)
    layouts = {
        "sd15": ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.transformer.text_model.x"],
        "sdxl": ["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.transformer.x",
                 "conditioner.embedders.1.model.transformer.x"],
        "sdxl_refiner": ["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.model.x"],
        "sd2": ["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.model.transformer.x"],
        "lora": ["lora_unet_down_blocks_0.alpha"],
    }
    found = {}
    for name, keys in layouts.items():
        save_file(dict.fromkeys(keys, tiny), str(tmp_path / f"{name}.safetensors"))
        found[name] = checkpoint_info.describe(tmp_path / f"{name}.safetensors")
    assert found == {"sd15": {"family": "sd15", "resolution": [512, 512]},
                     "sdxl": {"family": "sdxl", "resolution": [1024, 1024]},
                     "sdxl_refiner": {"family": "sdxl_refiner", "resolution": [1024, 1024]},
                     "sd2": {"family": "sd2"}, "lora": None}
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 8 + b"{")
    (tmp_path / "short.safetensors").write_bytes(b"\x01")
    (tmp_path / "header.safetensors").write_bytes((2 << 40).to_bytes(8, "little") + json.dumps({}).encode())
    for name in ("garbage", "short", "header"):
        assert checkpoint_info.describe(tmp_path / f"{name}.safetensors") is None
    assert checkpoint_info.describe(tmp_path / "missing.safetensors") is None
