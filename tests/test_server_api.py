"""The server's HTTP API with aiohttp's test client and the tiny random SD1.5 checkpoint."""
from __future__ import annotations

import asyncio
import io
import json

import pytest
import pytest_asyncio
from aiohttp import FormData
from helpers import txt2img
from PIL import Image

from latentgraph.server.app import create_app
from latentgraph.server.history import History

pytestmark = pytest.mark.asyncio
FINISHED = ("success", "error", "interrupted", "cancelled")


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def wait_job(client, job_id: str, timeout: float = 120) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await (await client.get(f"/api/jobs/{job_id}")).json()
        if job["status"] in FINISHED:
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job still {job['status']}"
        await asyncio.sleep(0.05)


async def run_job(client, workflow: dict) -> dict:
    response = await client.post("/api/queue", json={"workflow": workflow, "client_id": "tests"})
    assert response.status == 200, await response.text()
    return await wait_job(client, (await response.json())["job_id"])


def png_bytes(size=(16, 12), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def form(field: str, data: bytes, filename: str) -> FormData:
    body = FormData()
    body.add_field(field, data, filename=filename, content_type="application/octet-stream")
    return body


async def test_catalog_and_checkpoint_list_come_from_the_folders(client):
    catalog = await (await client.get("/api/nodes")).json()
    ckpt_input = next(i for i in catalog["nodes"]["CheckpointLoaderSimple"]["inputs"] if i["name"] == "ckpt_name")
    assert "tiny-sd15" in ckpt_input["choices"]
    assert "KSampler" in catalog["nodes"]
    assert "tiny-sd15" in (await (await client.get("/api/checkpoints")).json())["checkpoints"]


async def test_validate_names_node_and_input_of_every_error(client):
    good = await (await client.post("/api/validate", json={"workflow": txt2img()})).json()
    assert good == {"valid": True, "errors": []}

    bad = txt2img(steps=0)
    bad["nodes"]["pos"]["inputs"]["clip"] = {"node": "nowhere", "output": "CLIP"}
    answer = await (await client.post("/api/validate", json={"workflow": bad})).json()
    assert answer["valid"] is False
    where = {(e["node_id"], e["input"], e["kind"]) for e in answer["errors"]}
    assert ("sampler", "steps", "out_of_range") in where
    assert ("pos", "clip", "missing_node") in where

    # A string is never taken for a file path; a body that is not JSON is a 400.
    answer = await (await client.post("/api/validate", json={"workflow": "/etc/passwd"})).json()
    assert answer["errors"][0]["kind"] == "bad_format"
    assert (await client.post("/api/validate", data=b"{not json")).status == 400


async def test_queue_runs_a_job_and_history_keeps_it_with_its_image(client, settings):
    job = await run_job(client, txt2img(steps=2))
    assert job["status"] == "success", job["errors"]
    assert job["client_id"] == "tests"
    assert job["nodes"]["sampler"]["status"] == "executed"
    assert job["workflow"]["nodes"]["sampler"]["inputs"]["steps"] == 2
    [image] = job["images"]
    assert image["node_id"] == "save" and image["url"] == f"/api/images/{image['id']}"
    assert str(settings.output) not in json.dumps(job)  # no server paths leak out

    response = await client.get(image["url"])
    assert response.status == 200 and response.content_type == "image/png"
    with Image.open(io.BytesIO(await response.read())) as picture:
        assert picture.size == (64, 64)

    jobs = (await (await client.get("/api/jobs?limit=5")).json())["jobs"]
    assert jobs[0]["job_id"] == job["job_id"]
    assert (await client.get("/api/jobs/nope")).status == 404
    assert (await client.get("/api/jobs?limit=x")).status == 400


async def test_invalid_workflow_is_refused_with_all_errors_and_nothing_is_queued(client):
    bad = txt2img(steps=0, cfg=-1.0)
    response = await client.post("/api/queue", json={"workflow": bad})
    assert response.status == 400
    body = await response.json()
    assert {(e["node_id"], e["input"]) for e in body["errors"]} == {("sampler", "steps"), ("sampler", "cfg")}
    assert "error" in body
    queue = await (await client.get("/api/queue")).json()  # with ComfyUI's keys beside ours
    assert (queue["running"], queue["running_jobs"], queue["pending"], queue["queue_pending"]) == (None, [], [], [])
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []
    assert (await client.post("/api/queue", json=["no"])).status == 400


async def test_comfyui_api_workflow_is_queued_in_our_format(client):
    pytest.importorskip("latentgraph.graph.comfyui")
    comfy = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a blue square", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 3, "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "comfy", "images": ["8", 0]}},
    }
    job = await run_job(client, comfy)
    assert job["status"] == "success", job["errors"]
    assert job["workflow"]["format"] == "latentgraph"


async def test_cancel_a_pending_job_clear_the_queue_and_interrupt_the_running_one(client):
    long = await (await client.post("/api/queue", json={"workflow": txt2img(steps=1000)})).json()
    assert long["position"] == 0
    second = await (await client.post("/api/queue", json={"workflow": txt2img(seed=2)})).json()
    third = await (await client.post("/api/queue", json={"workflow": txt2img(seed=3)})).json()
    assert third["position"] == 2

    state = await (await client.get("/api/queue")).json()
    assert [j["job_id"] for j in state["pending"]] == [second["job_id"], third["job_id"]]
    assert [j["worker"] for j in state["pending"]] == [None, None]  # the local runner names no worker
    assert (await client.delete(f"/api/queue/{second['job_id']}")).status == 200
    assert (await client.delete(f"/api/queue/{second['job_id']}")).status == 404
    assert (await (await client.delete("/api/queue")).json())["cancelled"] == [third["job_id"]]

    while (await (await client.get("/api/queue")).json())["running"] is None:
        await asyncio.sleep(0.02)
    assert (await client.delete(f"/api/queue/{long['job_id']}")).status == 409  # running: interrupt it
    assert (await (await client.post("/api/interrupt", json={"job_id": "another"})).json()) == {"interrupted": None}
    assert (await (await client.post("/api/interrupt")).json()) == {"interrupted": long["job_id"]}

    assert (await wait_job(client, long["job_id"]))["status"] == "interrupted"
    for job in (second, third):
        assert (await wait_job(client, job["job_id"]))["status"] == "cancelled"
    queue = await (await client.get("/api/queue")).json()  # with ComfyUI's keys beside ours
    assert (queue["running"], queue["running_jobs"], queue["pending"], queue["queue_pending"]) == (None, [], [], [])


async def test_upload_stores_a_decodable_image_under_a_safe_generated_name(client, settings):
    response = await client.post("/api/upload", data=form("image", png_bytes(), "../../my picture?.png"))
    assert response.status == 200, await response.text()
    name = (await response.json())["name"]
    assert "/" not in name and ".." not in name and name.endswith(".png") and name.startswith("my_picture-")
    stored = (settings.input / name).read_bytes()  # re-encoded (tests/test_hostile_input.py): the same pixels
    with Image.open(io.BytesIO(stored)) as kept, Image.open(io.BytesIO(png_bytes())) as sent:
        assert kept.format == "PNG" and kept.tobytes() == sent.tobytes()
    assert name in (await (await client.get("/api/inputs")).json())["images"]
    assert await (await client.get(f"/api/inputs/{name}")).read() == stored
    catalog = await (await client.get("/api/nodes")).json()
    assert name in catalog["nodes"]["LoadImage"]["inputs"][0]["choices"]

    # Not an image, a truncated one, or the wrong field: refused, nothing stored.
    for data in (b"hello", png_bytes()[:40]):
        response = await client.post("/api/upload", data=form("image", data, "x.png"))
        assert response.status == 400 and "image" in (await response.json())["error"]
    assert (await client.post("/api/upload", data=form("file", png_bytes(), "x.png"))).status == 400
    assert (await client.post("/api/upload", json={"image": "x"})).status == 400
    assert sorted(p.name for p in settings.input.iterdir()) == [name]


async def test_oversize_upload_is_refused(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings, max_upload_bytes=4096))
    noise = Image.effect_noise((128, 128), 60).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 4096
    response = await client.post("/api/upload", data=form("image", buffer.getvalue(), "big.png"))
    assert response.status == 400 and "larger" in (await response.json())["error"]
    assert list(settings.input.iterdir()) == []


async def test_serve_command_takes_the_upload_cap_from_max_upload(monkeypatch, aiohttp_client, settings, capsys):
    from latentgraph import cli
    from latentgraph.server import app as server_app
    started = {}
    monkeypatch.setattr(server_app.web, "run_app", lambda app, host, port, print: started.update(app=app))
    folders = ["--models", str(settings.models), "--input", str(settings.input), "--output", str(settings.output),
               "--temp", str(settings.temp), "--device", "cpu"]
    assert cli.main(["serve", "--max-upload", "4KB", *folders]) == 0
    client = await aiohttp_client(started["app"])
    noise = io.BytesIO()
    Image.effect_noise((128, 128), 60).convert("RGB").save(noise, format="PNG")
    response = await client.post("/api/upload", data=form("image", noise.getvalue(), "big.png"))
    assert response.status == 400 and "larger" in (await response.json())["error"]
    assert (await client.post("/api/upload", data=form("image", png_bytes(), "small.png"))).status == 200
    assert cli.main(["serve", "--max-upload", "lots", *folders]) == 2
    assert "--max-upload" in capsys.readouterr().err


async def test_path_traversal_is_refused_everywhere(client, settings, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    (settings.input / "ok.png").write_bytes(png_bytes())
    for url in ("/api/inputs/..%2Fsecret.png", "/api/inputs/../secret.png", f"/api/inputs/{secret}",
                "/api/inputs/%2E%2E/secret.png", "/api/images/..%2Fsecret.png", "/api/images/" + "0" * 32,
                "/api/workflows/..%2Fsecret", "/..%2Fsecret.png", "/assets/..%2F..%2F..%2Fsecret.png"):
        response = await client.get(url)
        assert response.status in (400, 404), url
        assert await response.read() != png_bytes(), url
    assert (await client.get("/api/inputs/ok.png")).status == 200

    # Library names that could leave the folder are refused; nothing is written outside it.
    for name in ("..%2Fescape", "..", ".hidden", "a%2Fb", "x%00y"):
        response = await client.put(f"/api/workflows/{name}", json=txt2img())
        assert response.status in (400, 404, 405), name
    assert not list(tmp_path.glob("escape*")) and not (tmp_path / "a").exists()

    # SaveImage's prefix cannot leave the output folder either (a failing node, see test_server_ws).
    escaping = txt2img(steps=1)
    escaping["nodes"]["save"]["inputs"]["filename_prefix"] = "../../escaped"
    job = await run_job(client, escaping)
    assert job["status"] == "error" and job["errors"][0]["input"] == "filename_prefix"
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))


async def test_workflow_library_save_list_get_delete(client, settings):
    assert (await (await client.get("/api/workflows")).json()) == {"workflows": []}
    wf = txt2img(prompt="a green square")
    wf["ui"] = {"viewport": {"x": 1, "y": 2, "zoom": 0.5}}
    wf["nodes"]["ckpt"]["ui"] = {"position": [10, 20]}
    response = await client.put("/api/workflows/My flow (v2)", json=wf)
    assert response.status == 200
    assert (await response.json())["name"] == "My flow (v2)"
    listing = (await (await client.get("/api/workflows")).json())["workflows"]
    assert [e["name"] for e in listing] == ["My flow (v2)"] and listing[0]["modified"] > 0
    assert await (await client.get("/api/workflows/My flow (v2)")).json() == wf
    assert (settings.output.parent / "workflows" / "My flow (v2).json").is_file()  # beside output

    assert (await client.put("/api/workflows/other", json={"not": "a workflow"})).status == 400
    assert (await client.delete("/api/workflows/My flow (v2)")).status == 200
    assert (await client.get("/api/workflows/My flow (v2)")).status == 404
    assert (await client.delete("/api/workflows/My flow (v2)")).status == 404


async def test_import_turns_files_into_our_format(client):
    ours = txt2img(steps=2)
    answer = await client.post("/api/import", data=form("file", json.dumps(ours).encode(), "w.json"))
    assert (await answer.json())["workflow"] == ours

    # A PNG a job saved holds its workflow.
    job = await run_job(client, ours)
    png = await (await client.get(job["images"][0]["url"])).read()
    answer = await client.post("/api/import", data=form("file", png, "out.png"))
    assert (await answer.json())["workflow"]["nodes"] == ours["nodes"]

    for data in (png_bytes(), b"\xff\xfe garbage", b'{"nodes": 3}'):
        response = await client.post("/api/import", data=form("file", data, "x"))
        assert response.status == 400
        body = await response.json()
        assert body["errors"][0]["kind"] == "bad_format" and body["error"]


async def test_history_survives_a_restart(aiohttp_client, settings):
    first = await aiohttp_client(create_app(settings))
    job = await run_job(first, txt2img(steps=1))
    await first.close()

    again = await aiohttp_client(create_app(settings))
    kept = await (await again.get(f"/api/jobs/{job['job_id']}")).json()
    assert kept["status"] == "success" and kept["images"] == job["images"]
    assert (await again.get(kept["images"][0]["url"])).status == 200
    assert [j["job_id"] for j in (await (await again.get("/api/jobs")).json())["jobs"]] == [job["job_id"]]


async def test_jobs_a_stopped_server_left_unfinished_are_recorded_as_such(aiohttp_client, settings):
    history = History(settings.output.parent / "latentgraph-history.sqlite3")
    for job_id, status in (("was-running", "running"), ("was-pending", "pending")):
        history.save({"job_id": job_id, "status": status, "created": 1.0, "workflow": txt2img(), "errors": []})
    history.close()
    client = await aiohttp_client(create_app(settings))
    running = await (await client.get("/api/jobs/was-running")).json()
    assert running["status"] == "interrupted" and "stopped" in running["errors"][0]["message"]
    # A pending job is still queued: it runs without being queued again (issue 20's durable queue).
    assert (await wait_job(client, "was-pending"))["status"] == "success"
    assert (await (await client.get("/api/jobs/was-running")).json())["attempts"] == 0  # not run again


async def test_openapi_document_lists_every_route(client):
    doc = await (await client.get("/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path, method in [("/api/queue", "post"), ("/api/queue/{job_id}", "delete"), ("/api/upload", "post"),
                         ("/api/workflows/{name}", "put"), ("/api/images/{image_id}", "get"), ("/ws", "get")]:
        assert method in doc["paths"][path], path
    assert doc["paths"]["/api/queue"]["post"]["responses"]["400"]
    assert "Job" in doc["components"]["schemas"]


async def test_editor_is_served_from_its_build_folder(aiohttp_client, settings, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>editor</html>")
    (dist / "assets" / "app-123.js").write_text("console.log(1)")
    (dist / ".secret").write_text("no")
    client = await aiohttp_client(create_app(settings, editor_dist=dist))
    page = await client.get("/")
    assert page.status == 200 and "editor" in await page.text()
    script = await client.get("/assets/app-123.js")
    assert script.status == 200 and "immutable" in script.headers["Cache-Control"]
    assert (await client.get("/.secret")).status == 404
    assert (await client.get("/assets/missing.js")).status == 404
    missing = await aiohttp_client(create_app(settings, editor_dist=tmp_path / "none"))
    assert (await missing.get("/")).status == 404
