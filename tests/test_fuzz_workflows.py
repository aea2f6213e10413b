"""Property-based fuzzing (Hypothesis) of workflow documents through every way in: `load_workflow`
and `validate`, the CLI, and the HTTP API of a real server on loopback.

Whatever the document (tests/workflow_mutations.py makes them from real workflows in our formats
v1 and v2 and ComfyUI's API and UI formats), the engine raises only WorkflowFormatError (validation
returns its errors), the CLI exits 0 or 3 with a message and no traceback, and the server answers
200 or 400 with JSON, never 500. CI runs a modest number of examples; LATENTGRAPH_FUZZ_EXAMPLES=N
runs more (the long run is bench/fuzz_workflows.py, recorded in docs/robustness.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import threading
import uuid

import pytest
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from workflow_mutations import documents, dumps

from latentgraph.cli import main
from latentgraph.graph.errors import WorkflowFormatError
from latentgraph.graph.settings import Settings
from latentgraph.graph.validate import validate
from latentgraph.graph.workflow import load_workflow
from latentgraph.server.app import create_app

EXAMPLES = int(os.environ.get("LATENTGRAPH_FUZZ_EXAMPLES", "0")) or None
FUZZ = dict(deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Empty folders: checkpoints resolve to the shipped tiny-shapes, which the examples name."""
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("models", "input", "output", "temp"):
        (root / name).mkdir()
    return root


@pytest.fixture(scope="module")
def plain_settings(folders):
    return Settings(models=folders / "models", input=folders / "input", output=folders / "output",
                    temp=folders / "temp", device="cpu")


def engine_outcome(source, settings) -> str:
    """'format', 'invalid' or 'valid'; any exception but WorkflowFormatError fails the test."""
    try:
        doc = load_workflow(source)
    except WorkflowFormatError as exc:
        assert str(exc)
        return "format"
    plan, errors = validate(doc, settings)
    assert (plan is None) == bool(errors)
    json.dumps([error.to_json() for error in errors])  # what the server sends back
    assert all(error.message for error in errors)
    return "invalid" if errors else "valid"


@settings(max_examples=EXAMPLES or 250, **FUZZ)
@given(doc=documents())
def test_engine_raises_only_documented_errors(doc, plain_settings):
    text = dumps(doc)
    from_text = engine_outcome(text.encode(), plain_settings)  # bytes: a str not starting with { is a path
    # The same document given as a dict (checked in place, not copied) ends the same way.
    assert engine_outcome(doc, plain_settings) == from_text
    event(f"outcome: {from_text}")  # --hypothesis-show-statistics: how many reach validation


def cli(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


@settings(max_examples=EXAMPLES or 40, **FUZZ)
@given(doc=documents())
def test_cli_exits_0_or_3_with_a_message(doc, folders, plain_settings):
    path = folders / f"{uuid.uuid4().hex}.json"
    path.write_text(dumps(doc), encoding="utf-8")
    common = ["--models", str(folders / "models"), "--input", str(folders / "input")]
    code, err = cli(["validate", str(path), *common])
    assert code in (0, 3) and "Traceback" not in err
    assert (code == 3) == bool(err.strip()), err
    expected = {"format": 3, "invalid": 3, "valid": 0}[engine_outcome(doc, plain_settings)]
    assert code == expected, err
    code, err = cli(["import", str(path), "--allow-unknown", "-o", str(path.with_suffix(".out.json"))])
    assert code in (0, 3) and "Traceback" not in err
    if expected == 3:  # `run` refuses before loading any model, with the same exit code
        code, err = cli(["run", str(path), *common, "--out", str(folders / "output"), "--quiet"])
        assert code == 3 and err.strip() and "Traceback" not in err
    path.unlink()


@pytest.fixture(scope="module")
def server(folders, plain_settings):
    """A real server on a free loopback port, in its own thread and event loop."""
    app = create_app(plain_settings, history_path=folders / "history.sqlite3", library_folder=folders / "library")
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def request(port: int, method: str, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body, {"Content-Type": content_type})
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    assert response.status in (200, 400), (response.status, answer[:500])
    assert response.getheader("Content-Type", "").startswith("application/json")
    parsed = json.loads(answer)
    assert "internal error" not in json.dumps(parsed), parsed
    return response.status, parsed


def multipart(field: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"w.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@settings(max_examples=EXAMPLES or 40, **FUZZ)
@given(doc=documents())
def test_http_answers_200_or_400_never_500(doc, server, plain_settings):
    text = dumps(doc)
    body = ('{"workflow": ' + text + "}").encode()
    status, answer = request(server, "POST", "/api/validate", body, "application/json")
    outcome = engine_outcome(doc, plain_settings)
    if status == 200:
        assert answer["valid"] == (outcome == "valid") and (answer["errors"] == []) == answer["valid"]
    if outcome != "valid":  # a valid one would be queued and run; an invalid one is refused with its errors
        status, answer = request(server, "POST", "/api/queue", body, "application/json")
        assert status == 400 and answer["error"]
    status, _ = request(server, "PUT", "/api/workflows/fuzz", text.encode(), "application/json")
    assert status == (400 if outcome == "format" else 200)
    request(server, "POST", "/api/import", *multipart("file", text.encode()))
