"""ComfyUI's server protocol, driven as a third-party ComfyUI client drives it: a real server on
loopback, HTTP requests and a websocket with a clientId. The answers and messages are checked
against ComfyUI's shapes (the JSON schemas below, written from ComfyUI's server.py and
execution.py), and the image a prompt makes is compared with `latentgraph run` of the same file."""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import io
import json
import os
import struct
import subprocess
import sys

import aiohttp
import jsonschema
import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from latentgraph.graph.comfyui_export import to_api
from latentgraph.graph.workflow import load_workflow
from latentgraph.nodes import registry
from latentgraph.server.app import create_app
from latentgraph.server.comfy_catalog import node_info

pytestmark = pytest.mark.asyncio
EVIL = "https://evil.example"


def txt2img_api(steps: int = 3, seed: int = 1, prefix: str = "ComfyUI") -> dict:
    """ComfyUI's default txt2img graph (its node ids) on the shipped tiny-shapes model, 64 px."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"},
              "_meta": {"title": "Load Checkpoint"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": prefix, "images": ["8", 0]}},
    }


# --- ComfyUI's shapes ----------------------------------------------------------------------------

STRINGS = {"type": "array", "items": {"type": "string"}}
IMAGE_REF = {"type": "object", "required": ["filename", "subfolder", "type"], "properties": {
    "filename": {"type": "string", "minLength": 1}, "subfolder": {"type": "string"},
    "type": {"enum": ["output", "temp", "input"]}}}
QUEUE_ITEM = {"type": "array", "minItems": 5, "maxItems": 5, "prefixItems": [
    {"type": "number"}, {"type": "string"}, {"type": "object"}, {"type": "object"}, STRINGS]}
QUEUE = {"type": "object", "required": ["queue_running", "queue_pending"], "properties": {
    "queue_running": {"type": "array", "items": QUEUE_ITEM}, "queue_pending": {"type": "array", "items": QUEUE_ITEM}}}
HISTORY = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["prompt", "outputs", "status", "meta"], "properties": {
        "prompt": QUEUE_ITEM,
        "outputs": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"images": {"type": "array", "items": IMAGE_REF}}}},
        "status": {"type": "object", "required": ["status_str", "completed", "messages"], "properties": {
            "status_str": {"enum": ["success", "error"]}, "completed": {"type": "boolean"},
            "messages": {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [
                {"type": "string"}, {"type": "object", "required": ["prompt_id"]}]}}}},
        "meta": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["node_id", "display_node"]}}}}}
PROMPT_ANSWER = {"type": "object", "required": ["prompt_id", "number", "node_errors"], "properties": {
    "prompt_id": {"type": "string"}, "number": {"type": "number"}, "node_errors": {"type": "object"}}}
ERROR = {"type": "object", "required": ["type", "message", "details", "extra_info"], "properties": {
    "type": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "string"},
    "extra_info": {"type": "object"}}}
ERROR_ANSWER = {"type": "object", "required": ["error", "node_errors"], "properties": {
    "error": ERROR, "node_errors": {"type": "object", "additionalProperties": {
        "type": "object", "required": ["errors", "dependent_outputs", "class_type"], "properties": {
            "errors": {"type": "array", "minItems": 1, "items": ERROR}, "dependent_outputs": STRINGS,
            "class_type": {"type": "string"}}}}}}
INPUT_ENTRY = {"type": "array", "minItems": 1, "maxItems": 2, "prefixItems": [
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}]}, {"type": "object"}]}
INPUTS = {"type": "object", "additionalProperties": INPUT_ENTRY}
NODE_INFO = {"type": "object", "required": [
    "input", "input_order", "output", "output_is_list", "output_name", "name", "display_name", "description",
    "python_module", "category", "output_node"], "properties": {
        "input": {"type": "object", "required": ["required"], "properties": {"required": INPUTS, "optional": INPUTS},
                  "additionalProperties": False},
        "input_order": {"type": "object", "additionalProperties": STRINGS},
        "output": STRINGS, "output_is_list": {"type": "array", "items": {"type": "boolean"}}, "output_name": STRINGS,
        "name": {"type": "string"}, "display_name": {"type": "string"}, "description": {"type": "string"},
        "python_module": {"type": "string"}, "category": {"type": "string"}, "output_node": {"type": "boolean"}}}
OBJECT_INFO = {"type": "object", "minProperties": 1, "additionalProperties": NODE_INFO}
SYSTEM_STATS = {"type": "object", "required": ["system", "devices"], "properties": {
    "system": {"type": "object", "required": ["os", "ram_total", "ram_free", "comfyui_version", "python_version",
                                              "pytorch_version", "embedded_python", "argv"]},
    "devices": {"type": "array", "minItems": 1, "items": {"type": "object", "required": [
        "name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"]}}}}
WITH_PROMPT = ["prompt_id"]
MESSAGE_DATA = {  # what each websocket message carries
    "status": {"required": ["status"], "properties": {"status": {"type": "object", "required": ["exec_info"]}}},
    "execution_start": {"required": WITH_PROMPT},
    "execution_cached": {"required": ["nodes", *WITH_PROMPT], "properties": {"nodes": STRINGS}},
    "executing": {"required": ["node", *WITH_PROMPT], "properties": {"node": {"type": ["string", "null"]}}},
    "progress": {"required": ["value", "max", "node", *WITH_PROMPT]},
    "executed": {"required": ["node", "output", *WITH_PROMPT], "properties": {"output": {
        "type": "object", "properties": {"images": {"type": "array", "items": IMAGE_REF}}}}},
    "execution_success": {"required": WITH_PROMPT},
    "execution_interrupted": {"required": ["node_id", "node_type", "executed", *WITH_PROMPT]},
    "execution_error": {"required": ["node_id", "node_type", "executed", "exception_message", "exception_type",
                                     "traceback", "current_inputs", "current_outputs", *WITH_PROMPT]},
}


def check_message(message: dict) -> None:
    assert message["type"] in MESSAGE_DATA, message
    jsonschema.validate(message, {"type": "object", "required": ["type", "data"], "properties": {
        "data": {"type": "object", **MESSAGE_DATA[message["type"]]}}})


# --- the client ----------------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path):
    """Empty folders: the shipped tiny-shapes model is the one checkpoint."""
    from latentgraph.graph.settings import Settings

    for name in ("models", "input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=tmp_path / "models", input=tmp_path / "input", output=tmp_path / "output",
                    temp=tmp_path / "temp", device="cpu")


@pytest_asyncio.fixture
async def comfy(aiohttp_client, settings):
    """A server on 127.0.0.1 (a free port), reached by URL as any HTTP client reaches it."""
    server = await aiohttp_client(create_app(settings))
    server.base = f"http://127.0.0.1:{server.port}"
    return server


async def get_json(comfy, path: str):
    async with comfy.session.get(comfy.base + path) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def post_prompt(comfy, prompt: dict, client_id: str | None = None, **extra) -> dict:
    async with comfy.session.post(comfy.base + "/prompt",
                                  json={"prompt": prompt, "client_id": client_id, **extra}) as answer:
        body = await answer.json()
        assert answer.status == 200, body
    jsonschema.validate(body, PROMPT_ANSWER)
    assert body["node_errors"] == {}
    return body


async def follow(ws, prompt_id: str, timeout: float = 300) -> tuple[list[dict], list[bytes]]:
    """The client's messages up to `executing` with node null for this prompt, and the binary frames."""
    messages, frames = [], []
    while True:
        message = await ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.BINARY:
            frames.append(message.data)
            continue
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        check_message(data)
        messages.append(data)
        if data["type"] == "executing" and data["data"]["node"] is None and data["data"]["prompt_id"] == prompt_id:
            return messages, frames


def kinds(messages: list[dict]) -> list[tuple]:
    """(type, node) without status and progress messages."""
    return [(m["type"], m["data"].get("node")) for m in messages if m["type"] not in ("status", "progress")]


# --- tests ---------------------------------------------------------------------------------------

async def test_a_prompt_over_http_and_websocket_gives_the_image_latentgraph_run_gives(comfy, tmp_path):
    prompt = txt2img_api()
    (tmp_path / "api.json").write_text(json.dumps(prompt))
    env = dict(os.environ, OMP_NUM_THREADS="2")  # the thread count the server's tests use
    cli = subprocess.Popen([sys.executable, "-m", "latentgraph", "run", "api.json", "--out", "cli-out", "--quiet"],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    ws = await comfy.session.ws_connect(comfy.base + "/ws?clientId=client-1")
    greeting = await ws.receive_json(timeout=10)
    check_message(greeting)
    assert greeting["data"]["sid"] == "client-1"
    assert greeting["data"]["status"] == {"exec_info": {"queue_remaining": 0}}
    queued = await post_prompt(comfy, prompt, "client-1")
    messages, frames = await follow(ws, queued["prompt_id"])

    node_order = ["4", "5", "6", "7", "3", "8", "9"]  # the executor's order (ids in natural order where free)
    assert kinds(messages) == [("execution_start", None), ("execution_cached", None),
                               *[("executing", n) for n in node_order], ("executed", "9"),
                               ("execution_success", None), ("executing", None)]
    assert all(m["data"]["prompt_id"] == queued["prompt_id"] for m in messages if m["type"] != "status")
    assert [(m["data"]["value"], m["data"]["max"], m["data"]["node"]) for m in messages
            if m["type"] == "progress"] == [(1, 3, "3"), (2, 3, "3"), (3, 3, "3")]
    assert {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 1}}}} in messages
    # A live preview: ComfyUI's binary frame, PREVIEW_IMAGE (1) then JPEG (1), then the picture.
    assert frames and all(struct.unpack(">II", f[:8]) == (1, 1) for f in frames)
    with Image.open(io.BytesIO(frames[-1][8:])) as preview:
        assert preview.format == "JPEG"
    [image] = next(m for m in messages if m["type"] == "executed")["data"]["output"]["images"]
    assert image == {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}

    async with comfy.session.get(comfy.base + "/view", params=image) as answer:
        assert answer.status == 200
        served = await answer.read()

    history = await get_json(comfy, f"/history/{queued['prompt_id']}")
    jsonschema.validate(history, HISTORY)
    entry = history[queued["prompt_id"]]
    assert entry["prompt"] == [queued["number"], queued["prompt_id"], prompt, {"client_id": "client-1"}, ["9"]]
    assert entry["outputs"] == {"9": {"images": [image]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_success"]
    assert await get_json(comfy, "/api/history") == await get_json(comfy, "/history") == history

    # Queued again: everything comes from the cache, and the output node still shows its image.
    again = await post_prompt(comfy, prompt, "client-1", prompt_id="my-own-id")
    assert again["prompt_id"] == "my-own-id" and again["number"] == queued["number"] + 1
    messages, _ = await follow(ws, "my-own-id")
    assert kinds(messages) == [("execution_start", None), ("execution_cached", None), ("executed", "9"),
                               ("execution_success", None), ("executing", None)]
    cached = next(m for m in messages if m["type"] == "execution_cached")["data"]["nodes"]
    assert sorted(cached) == sorted(node_order)
    assert list(await get_json(comfy, "/history")) == [queued["prompt_id"], "my-own-id"]  # oldest first
    assert list(await get_json(comfy, "/history?max_items=1")) == ["my-own-id"]
    await ws.close()  # (a client that stops reading would miss the server's pings and be dropped)

    out, err = await asyncio.to_thread(cli.communicate, timeout=600)
    assert cli.returncode == 0, err
    # Both write our converted workflow into the PNG, so the files are equal byte for byte.
    assert served == (tmp_path / "cli-out" / "ComfyUI_00001_.png").read_bytes()


async def test_a_client_only_gets_its_own_prompts_messages_and_our_editor_its_events(comfy):
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    mine = await comfy.session.ws_connect(comfy.base + "/api/ws?clientId=mine")
    other = await comfy.session.ws_connect(comfy.base + "/ws?clientId=other")
    editor = await comfy.session.ws_connect(comfy.base + "/ws")  # ours: no clientId
    for ws in (mine, other):
        assert (await ws.receive_json(timeout=10))["type"] == "status"
    assert (await editor.receive_json(timeout=10))["type"] == "queue"

    queued = await post_prompt(comfy, prompt, "mine")
    messages, _ = await follow(mine, queued["prompt_id"])
    [shown] = next(m for m in messages if m["type"] == "executed")["data"]["output"]["images"]
    assert shown["type"] == "temp" and shown["filename"].startswith("preview_")
    async with comfy.session.get(comfy.base + "/api/view", params=shown) as answer:
        assert answer.status == 200 and answer.content_type == "image/png"
    # The other client hears only that the queue changed.
    seen = []
    with pytest.raises(asyncio.TimeoutError):
        while True:
            seen.append((await other.receive_json(timeout=1))["type"])
    assert seen and set(seen) == {"status"}
    # Our editor's socket speaks our protocol for the same job.
    events = []
    while not events or events[-1]["type"] != "finished":
        event = await editor.receive_json(timeout=10)
        events.append(event)
    assert {e["type"] for e in events} >= {"queued", "started", "executing", "executed", "finished"}
    for ws in (mine, other, editor):
        await ws.close()


async def test_invalid_prompts_are_refused_in_comfyuis_error_shape(comfy):
    async def refused(body) -> dict:
        async with comfy.session.post(comfy.base + "/prompt", json=body) as answer:
            assert answer.status == 400
            doc = await answer.json()
        jsonschema.validate(doc, ERROR_ANSWER)
        return doc

    assert (await refused({"client_id": "x"}))["error"]["type"] == "no_prompt"

    bad = txt2img_api()
    bad["3"]["inputs"]["steps"] = 0
    bad["10"] = {"class_type": "FreeU_V2", "inputs": {"model": ["4", 0], "b1": 1.3}}  # not ours
    doc = await refused({"prompt": bad})
    assert doc["error"]["type"] == "missing_node_type" and "FreeU_V2" in doc["error"]["message"]
    assert doc["node_errors"]["10"]["class_type"] == "FreeU_V2"
    assert doc["node_errors"]["10"]["errors"][0]["type"] == "missing_node_type"
    sampler = doc["node_errors"]["3"]
    assert sampler["class_type"] == "KSampler" and sampler["dependent_outputs"] == ["9"]
    assert sampler["errors"] == [{"type": "value_smaller_than_min", "message": "Value smaller than min",
                                  "details": "KSampler '3', input 'steps': 0 is below the minimum 1",
                                  "extra_info": {"input_name": "steps"}}]

    del bad["10"]
    bad["3"]["inputs"]["steps"] = 3
    bad["4"]["inputs"]["ckpt_name"] = "no-such-model"
    del bad["8"]["inputs"]["vae"]
    doc = await refused({"prompt": bad})
    assert doc["error"]["type"] == "prompt_outputs_failed_validation"
    assert doc["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"
    assert doc["node_errors"]["8"]["errors"][0]["type"] == "required_input_missing"
    assert doc["node_errors"]["8"]["errors"][0]["extra_info"] == {"input_name": "vae"}

    no_output = {k: v for k, v in txt2img_api().items() if k != "9"}
    assert (await refused({"prompt": no_output}))["error"]["type"] == "prompt_no_outputs"
    assert (await get_json(comfy, "/queue")) == {"queue_running": [], "queue_pending": []}  # nothing was queued


async def test_queue_delete_interrupt_and_history_of_an_interrupted_prompt(comfy):
    ws = await comfy.session.ws_connect(comfy.base + "/ws?clientId=c")
    await ws.receive_json(timeout=10)
    long = await post_prompt(comfy, txt2img_api(steps=10_000), "c")
    waiting = await post_prompt(comfy, txt2img_api(steps=2, seed=5), "c")
    while True:  # until the long prompt's sampler runs
        message = await ws.receive(timeout=300)
        if message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data)["type"] == "progress":
            break

    queue = await get_json(comfy, "/queue")
    jsonschema.validate(queue, QUEUE)
    assert [item[1] for item in queue["queue_running"]] == [long["prompt_id"]]
    assert [item[1] for item in queue["queue_pending"]] == [waiting["prompt_id"]]
    assert queue["queue_pending"][0][0] == waiting["number"] and queue["queue_pending"][0][4] == ["9"]
    both = await get_json(comfy, "/api/queue")  # our editor's keys and ComfyUI's on the shared path
    assert both["running"]["job_id"] and [j["job_id"] for j in both["pending"]] and both["queue_pending"]
    assert (await get_json(comfy, "/prompt")) == {"exec_info": {"queue_remaining": 2}}

    async with comfy.session.post(comfy.base + "/queue", json={"delete": [waiting["prompt_id"]]}) as answer:
        assert answer.status == 200
    assert (await get_json(comfy, "/queue"))["queue_pending"] == []
    for path in ("/interrupt", "/api/interrupt"):  # the second is also our editor's
        async with comfy.session.post(comfy.base + path, json={"prompt_id": "not-running"}) as answer:
            assert (await answer.json()) == {"interrupted": None}
    async with comfy.session.post(comfy.base + "/interrupt") as answer:
        assert answer.status == 200

    messages, _ = await follow(ws, long["prompt_id"])
    interrupted = next(m for m in messages if m["type"] == "execution_interrupted")["data"]
    assert interrupted["prompt_id"] == long["prompt_id"]
    assert interrupted["node_id"] == "3" and interrupted["node_type"] == "KSampler"
    assert interrupted["executed"] == ["4", "5", "6", "7"]
    assert kinds(messages)[-2:] == [("execution_interrupted", None), ("executing", None)]

    history = await get_json(comfy, "/history")
    jsonschema.validate(history, HISTORY)
    assert list(history) == [long["prompt_id"]]  # a deleted prompt never ran: ComfyUI keeps no history of it
    status = history[long["prompt_id"]]["status"]
    assert status["status_str"] == "error" and status["completed"] is False
    assert status["messages"][-1][0] == "execution_interrupted" and status["messages"][-1][1]["node_id"] == "3"
    assert await get_json(comfy, f"/history/{waiting['prompt_id']}") == {}

    async with comfy.session.post(comfy.base + "/history", json={"delete": [long["prompt_id"]]}) as answer:
        assert answer.status == 200
    assert await get_json(comfy, "/history") == {}
    async with comfy.session.post(comfy.base + "/api/queue", json={"clear": True}) as answer:
        assert await answer.json() == {"cancelled": []}  # ComfyUI's body on the path our editor queues on
    jobs = (await get_json(comfy, "/api/jobs"))["jobs"]  # our own history keeps every job
    assert {j["status"] for j in jobs} == {"interrupted", "cancelled"}
    await ws.close()


def png_bytes(color, size=(8, 8), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


async def upload(comfy, path: str, data: bytes, filename: str, **fields) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    return await comfy.session.post(comfy.base + path, data=form)


async def test_upload_view_mask_and_a_prompt_that_loads_the_upload(comfy, settings):
    red = png_bytes((255, 0, 0))
    answer = await upload(comfy, "/upload/image", red, "my picture.png")
    assert answer.status == 200 and await answer.json() == {"name": "my_picture.png", "subfolder": "", "type": "input"}
    # The same file again is the same upload; other content under the same name gets its own.
    assert (await (await upload(comfy, "/api/upload/image", red, "my picture.png")).json())["name"] == "my_picture.png"
    blue = await (await upload(comfy, "/upload/image", png_bytes((0, 0, 255)), "my picture.png")).json()
    assert blue["name"] == "my_picture (1).png"
    kept = await (await upload(comfy, "/upload/image", png_bytes((0, 255, 0)), "my picture.png",
                               overwrite="true")).json()
    assert kept["name"] == "my_picture.png"
    sub = await (await upload(comfy, "/upload/image", red, "../../x.png", subfolder="shots")).json()
    assert sub == {"name": "x.png", "subfolder": "shots", "type": "input"}
    assert (settings.input / "shots" / "x.png").read_bytes() == red
    for bad in ({"subfolder": "../outside"}, {"type": "models"}):
        assert (await upload(comfy, "/upload/image", red, "a.png", **bad)).status == 400
    assert (await upload(comfy, "/upload/image", b"not an image", "a.png")).status == 400
    assert sorted(p.relative_to(settings.input).as_posix() for p in settings.input.rglob("*") if p.is_file()) == [
        "my_picture (1).png", "my_picture.png", "shots/x.png"]

    async with comfy.session.get(comfy.base + "/view", params={"filename": "x.png", "subfolder": "shots",
                                                                "type": "input"}) as answer:
        assert answer.status == 200 and await answer.read() == red
    for params in ({"filename": "../input/x.png", "type": "output"}, {"filename": "x.png", "subfolder": "..",
                                                                        "type": "input"},
                   {"filename": "x.png", "type": "models"}, {"filename": "missing.png", "type": "input"}):
        async with comfy.session.get(comfy.base + "/view", params=params) as answer:
            assert answer.status in (400, 404), params
    async with comfy.session.get(comfy.base + "/view", params={"filename": "x.png [input]", "subfolder": "shots",
                                                                "preview": "jpeg;50"}) as answer:
        assert answer.status == 200 and answer.content_type == "image/jpeg"

    # A mask: the original picture with the painted alpha.
    painted = Image.new("RGBA", (8, 8), (0, 0, 0, 255))
    painted.paste((0, 0, 0, 0), (0, 0, 4, 8))
    buffer = io.BytesIO()
    painted.save(buffer, format="PNG")
    ref = json.dumps({"filename": "x.png", "subfolder": "shots", "type": "input"})
    masked = await (await upload(comfy, "/upload/mask", buffer.getvalue(), "x-mask.png", original_ref=ref)).json()
    assert masked == {"name": "x-mask.png", "subfolder": "", "type": "input"}
    with Image.open(settings.input / "x-mask.png") as picture:
        pixels = np.array(picture)
    assert picture.mode == "RGBA" and (pixels[:, :4, 3] == 0).all() and (pixels[:, 4:, 3] == 255).all()
    assert (pixels[..., :3] == [255, 0, 0]).all()
    assert (await upload(comfy, "/upload/mask", buffer.getvalue(), "m.png",
                         original_ref=json.dumps({"filename": "../x.png"}))).status == 400

    # The upload in a prompt, as ComfyUI clients use it.
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "shots/x.png", "upload": "image"}},
              "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inverted"}}}
    ws = await comfy.session.ws_connect(comfy.base + "/ws?clientId=u")
    await ws.receive_json(timeout=10)
    queued = await post_prompt(comfy, prompt, "u")
    messages, _ = await follow(ws, queued["prompt_id"])
    [image] = next(m for m in messages if m["type"] == "executed")["data"]["output"]["images"]
    async with comfy.session.get(comfy.base + "/view", params=image) as answer:
        with Image.open(io.BytesIO(await answer.read())) as picture:
            assert np.array(picture.convert("RGB"))[0, 0].tolist() == [0, 255, 255]
    await ws.close()


async def test_object_info_and_the_other_reads_have_comfyuis_shapes(comfy, settings):
    info = await get_json(comfy, "/object_info")
    jsonschema.validate(info, OBJECT_INFO)
    assert info == await get_json(comfy, "/api/object_info")
    ksampler = info["KSampler"]
    assert ksampler["input"]["required"]["seed"][0] == "INT"
    assert ksampler["input"]["required"]["seed"][1]["control_after_generate"] is True
    assert "euler" in ksampler["input"]["required"]["sampler_name"][0]
    assert ksampler["input"]["required"]["model"][0] == "MODEL"
    assert ksampler["input_order"]["required"][:2] == ["model", "seed"]
    assert ksampler["output"] == ["LATENT"] and ksampler["output_node"] is False
    assert ksampler["python_module"] == "nodes"
    loader = info["CheckpointLoaderSimple"]
    assert loader["output"] == ["MODEL", "CLIP", "VAE"] and loader["output_name"] == ["MODEL", "CLIP", "VAE"]
    assert "tiny-shapes" in loader["input"]["required"]["ckpt_name"][0]
    assert info["LoadImage"]["input"]["required"]["image"][1]["image_upload"] is True
    assert info["SaveImage"]["output_node"] is True and info["SaveImage"]["output"] == []
    assert await get_json(comfy, "/object_info/KSampler") == {"KSampler": ksampler}
    assert await get_json(comfy, "/object_info/NoSuchNode") == {}
    from_pack = dataclasses.replace(registry()["ImageInvert"], pack="some-pack", pack_version="1.0")
    assert node_info(from_pack, lambda inp: [])["python_module"] == "custom_nodes.some-pack"

    jsonschema.validate(await get_json(comfy, "/system_stats"), SYSTEM_STATS)
    assert (await get_json(comfy, "/system_stats"))["devices"][0]["type"] == "cpu"
    (settings.models / "embeddings").mkdir(exist_ok=True)
    (settings.models / "embeddings" / "style.pt").write_bytes(b"")
    assert await get_json(comfy, "/embeddings") == ["style"]
    folders = await get_json(comfy, "/models")
    assert {"checkpoints", "loras", "vae", "embeddings", "controlnet"} <= set(folders)
    assert "tiny-shapes" in await get_json(comfy, "/api/models/checkpoints")
    async with comfy.session.get(comfy.base + "/models/upscale_models") as answer:
        assert answer.status == 404
    assert (await get_json(comfy, "/features"))["max_upload_size"] > 0


async def test_comfyuis_routes_are_guarded_as_ours(comfy, aiohttp_client, settings):
    async with comfy.session.post(comfy.base + "/prompt", json={"prompt": txt2img_api()},
                                  headers={"Origin": EVIL}) as answer:
        assert answer.status == 403
    for path in ("/history", "/view?filename=x.png", "/object_info", "/api/history"):
        async with comfy.session.get(comfy.base + path, headers={"Sec-Fetch-Site": "cross-site",
                                                                 "Sec-Fetch-Mode": "no-cors"}) as answer:
            assert answer.status == 403, path
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await comfy.session.ws_connect(comfy.base + "/ws?clientId=x", headers={"Origin": EVIL})
    assert refused.value.status == 403
    async with comfy.session.get(comfy.base + "/history", headers={"Host": "evil.example"}) as answer:
        assert answer.status == 403  # DNS rebinding

    guarded = await aiohttp_client(create_app(settings, token="s3cret", host="0.0.0.0"))
    for path in ("/prompt", "/history", "/object_info", "/api/queue", "/system_stats"):
        assert (await guarded.get(path)).status == 401, path
    assert (await guarded.get("/object_info/KSampler", headers={"Authorization": "Bearer s3cret"})).status == 200
    ws = await guarded.ws_connect("/ws?clientId=x&token=s3cret")
    assert (await ws.receive_json(timeout=10))["type"] == "status"
    await ws.close()


async def test_our_workflows_export_to_comfyuis_api_format():
    prompt = txt2img_api()
    exported = to_api(load_workflow(prompt))
    assert {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in exported.items()} == \
        {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}
    assert exported["4"]["_meta"] == {"title": "Load Checkpoint"} and exported["3"]["_meta"] == {"title": "KSampler"}
    # ComfyUI's editor leaves muted nodes out and wires around bypassed ones: so does the export.
    doc = load_workflow(prompt)
    doc["nodes"]["blur"] = {"type": "ImageBlur", "mode": "bypassed", "inputs": {
        "image": {"node": "8", "output": "IMAGE"}, "blur_radius": 3, "sigma": 1.0}}
    doc["nodes"]["9"]["inputs"]["images"] = {"node": "blur", "output": "IMAGE"}
    doc["nodes"]["extra"] = {"type": "PreviewImage", "mode": "muted", "inputs": {
        "images": {"node": "8", "output": "IMAGE"}}}
    exported = to_api(copy.deepcopy(doc))
    assert "blur" not in exported and "extra" not in exported
    assert exported["9"]["inputs"]["images"] == ["8", 0]
