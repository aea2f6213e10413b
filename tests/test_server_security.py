"""Who may use the server: cross-origin requests, DNS rebinding, and the token a non-loopback
address requires."""
from __future__ import annotations

import io

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import FormData
from helpers import txt2img
from PIL import Image

from latentgraph.server import app as server_app
from latentgraph.server.app import create_app, serve
from latentgraph.server.security import is_loopback

pytestmark = pytest.mark.asyncio
EVIL = "https://evil.example"


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


def own_origin(client) -> str:
    return f"http://{client.host}:{client.port}"


def picture() -> FormData:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    body = FormData()
    body.add_field("image", buffer.getvalue(), filename="x.png")
    return body


async def test_cross_origin_state_changes_are_refused(client, settings):
    library = settings.output.parent / "workflows"
    assert (await client.put("/api/workflows/kept", json=txt2img())).status == 200  # no Origin: a script

    refused = [
        client.post("/api/queue", json={"workflow": txt2img()}, headers={"Origin": EVIL}),
        client.post("/api/interrupt", headers={"Origin": EVIL}),
        client.delete("/api/queue", headers={"Origin": EVIL}),
        client.put("/api/workflows/evil", json=txt2img(), headers={"Origin": EVIL}),
        client.delete("/api/workflows/kept", headers={"Origin": EVIL}),
        client.post("/api/upload", data=picture(), headers={"Origin": EVIL}),
        # Same host, other port (another local web app), and sandboxed or file:// pages.
        client.post("/api/queue", json={"workflow": txt2img()}, headers={"Origin": "http://127.0.0.1:1"}),
        client.post("/api/queue", json={"workflow": txt2img()}, headers={"Origin": "null"}),
    ]
    for request in refused:
        response = await request
        assert response.status == 403
        assert "cross-origin" in (await response.json())["error"]
    assert sorted(p.name for p in library.iterdir()) == ["kept.json"]
    assert list(settings.input.iterdir()) == []
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []

    # The editor's own requests carry the server's own origin.
    response = await client.put("/api/workflows/mine", json=txt2img(), headers={"Origin": own_origin(client)})
    assert response.status == 200


async def test_cross_site_reads_and_websockets_are_refused(client):
    assert (await client.get("/api/jobs", headers={"Sec-Fetch-Site": "cross-site"})).status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers={"Origin": EVIL})
    assert refused.value.status == 403
    ws = await client.ws_connect("/ws", headers={"Origin": own_origin(client)})
    assert (await ws.receive_json(timeout=5))["type"] == "queue"
    await ws.close()


async def test_dns_rebinding_is_refused_on_loopback(client):
    # A page on evil.example whose name now resolves to 127.0.0.1 sends its own Host header.
    response = await client.get("/api/jobs", headers={"Host": f"evil.example:{client.port}"})
    assert response.status == 403
    assert (await client.get("/api/jobs", headers={"Host": f"localhost:{client.port}"})).status == 200


async def test_non_loopback_address_needs_a_token(aiohttp_client, settings):
    with pytest.raises(ValueError, match="token"):
        create_app(settings, host="0.0.0.0")
    client = await aiohttp_client(create_app(settings, token="s3cret", host="0.0.0.0"))
    for path in ("/api/nodes", "/api/jobs", "/", "/api/openapi.json"):
        assert (await client.get(path)).status == 401, path
    assert (await client.get("/api/jobs", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.post("/api/queue", json={"workflow": txt2img()})).status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 401

    assert (await client.get("/api/jobs", headers={"Authorization": "Bearer s3cret"})).status == 200
    ws = await client.ws_connect("/ws?token=s3cret")
    assert (await ws.receive_json(timeout=5))["type"] == "queue"
    await ws.close()
    # Opening the printed URL (?token=) leaves a same-site cookie, so the editor's files load.
    page = await client.get("/api/checkpoints?token=s3cret")
    assert page.status == 200
    cookie = page.cookies["latentgraph_token"]
    assert cookie.value == "s3cret" and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert (await client.get("/api/jobs")).status == 200  # the client keeps the cookie
    # A token does not excuse a cross-origin state change.
    response = await client.post("/api/interrupt", headers={"Authorization": "Bearer s3cret", "Origin": EVIL})
    assert response.status == 403


async def test_serve_generates_and_prints_a_token_for_non_loopback_addresses(monkeypatch, settings, capsys):
    started = {}

    def fake_run_app(app, host, port, print):
        started.update(app=app, host=host, port=port)
        print("listening")

    monkeypatch.setattr(server_app.web, "run_app", fake_run_app)
    serve(host="0.0.0.0", port=8190, settings=settings)
    out = capsys.readouterr().out
    token = out.split("?token=")[1].split()[0]
    assert len(token) >= 20 and f":8190/?token={token}" in out
    assert started["host"] == "0.0.0.0" and started["port"] == 8190

    serve(host="127.0.0.1", port=8191, settings=settings)
    assert "token" not in capsys.readouterr().out.split("http://127.0.0.1:8191/")[1]


async def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "", "192.168.1.4", "example.com", "10.0.0.1"]))
