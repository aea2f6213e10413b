"""Shared pieces of the browser tests: a real `latentgraph serve` on loopback, Debian's Chromium
driven by Playwright, and helpers that act on the editor the way a user does.

Test modules import the fixtures they use (`server_dirs`, `server`, `browser`, `page`); each module
gets one server and one browser (module scope) and a fresh browser profile per test.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
DIST = Path(__file__).resolve().parent.parent / "web" / "dist" / "index.html"
DEFAULT_WORKFLOW = Path(__file__).resolve().parent.parent / "web" / "src" / "default-workflow.json"
RUN_TIMEOUT_MS = 180_000  # a CPU run of the default workflow, with model loading

# Marks for a module of browser tests: `pytestmark = BROWSER_MARKS`.
BROWSER_MARKS = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not DIST.exists(), reason="the editor is not built (cd web && npm ci && npm run build)"),
]


def latentgraph_command() -> list[str]:
    script = Path(sys.executable).with_name("latentgraph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "latentgraph.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server_dirs(tmp_path_factory):
    return make_server_dirs(tmp_path_factory.mktemp("browser-server"))


def make_server_dirs(root: Path) -> dict[str, Path]:
    """Models, input and output folders. The default workflow needs the checkpoint `tiny-shapes`:
    the shipped one if the package has it, else a tiny random one of the same name."""
    dirs = {name: root / name for name in ("models", "input", "output", "temp")}
    for path in dirs.values():
        path.mkdir()
    from latentgraph.nodes.folders import BUILTIN_MODELS

    if not any(p.name.startswith("tiny-shapes") for p in BUILTIN_MODELS.glob("*")):
        from latentgraph.tiny_random import save_sd15

        save_sd15(dirs["models"] / "checkpoints" / "tiny-shapes", seed=0)
    return dirs


@contextlib.contextmanager
def running_server(dirs: dict[str, Path], extra_args: tuple[str, ...] = ()):
    """`latentgraph serve` on a free loopback port with the given folders; yields its base URL."""
    port = free_port()
    log_path = dirs["output"].parent / f"server-{port}.log"
    log = open(log_path, "wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*latentgraph_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
         "--models", str(dirs["models"]), "--input", str(dirs["input"]),
         "--output", str(dirs["output"]), "--temp", str(dirs["temp"]), *extra_args],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError("latentgraph serve exited:\n" + log_path.read_text())
            try:
                get_json(url + "/api/nodes")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def server(server_dirs):
    """A real `latentgraph serve` on a free loopback port; yields its base URL."""
    with running_server(server_dirs) as url:
        yield url


# Module scope: Playwright's sync API keeps an event loop running while it is open, which would
# stop the asyncio tests of later modules from starting theirs.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def editor_page(browser, server: str, width: int = 1500, height: int = 900, ready: str = "[data-testid=node-7]",
                init_script: str | None = None):
    """A fresh browser profile (empty localStorage) with the editor loaded; fails on uncaught errors."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    if init_script:
        page.add_init_script(init_script)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector(ready)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def page(browser, server):
    """The editor at 1500 x 900 with the default workflow open."""
    with editor_page(browser, server) as page:
        yield page


def workflow(page) -> dict:
    return page.evaluate("window.latentgraph.getWorkflow()")


def center(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box, f"{selector} is not visible"
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag_wire(page, source: str, target: str) -> None:
    """Drag a connection from one socket to another, the way a user does."""
    x1, y1 = center(page, source)
    x2, y2 = center(page, target)
    page.mouse.move(x1, y1)
    page.mouse.down()
    page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, steps=6)
    page.mouse.move(x2, y2, steps=6)
    page.mouse.up()


def drop_file(page, data: bytes, name: str, mime: str) -> None:
    """Drop a file on the canvas (an OS drag and drop, as a DataTransfer)."""
    page.evaluate(
        """([b64, name, mime]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const pane = document.querySelector("[data-testid=canvas] .react-flow__pane");
            for (const type of ["dragenter", "dragover", "drop"]) {
                pane.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer,
                                                         clientX: 700, clientY: 450 }));
            }
        }""",
        [base64.b64encode(data).decode(), name, mime],
    )


def node_inputs(wf: dict) -> dict:
    return {node_id: (node["type"], node["inputs"]) for node_id, node in wf["nodes"].items()}


