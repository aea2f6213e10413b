"""End-to-end tests of the browser editor (web/) against a real `latentgraph serve`.

Each test drives Debian's Chromium (headless) with Playwright. The server runs as a subprocess on
loopback with temporary models/input/output folders. The editor exposes `window.latentgraph`
(getWorkflow, openWorkflow) and stable `data-testid` attributes; the tests rely on nothing else.
"""
from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from browser_helpers import (  # noqa: F401
    BROWSER_MARKS,
    DEFAULT_WORKFLOW,
    RUN_TIMEOUT_MS,
    browser,
    center,
    drag_wire,
    drop_file,
    latentgraph_command,
    node_inputs,
    page,
    server,
    server_dirs,
    workflow,
)

pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_MARKS

# --- scenarios ------------------------------------------------------------------------------


def test_first_visit_opens_the_default_workflow(page):
    wf = workflow(page)
    shipped = json.loads(DEFAULT_WORKFLOW.read_text())
    assert node_inputs(wf) == node_inputs(shipped)
    assert page.locator("[data-testid=node-1] [data-testid=widget-ckpt_name] select").input_value() == "tiny-shapes"
    assert page.locator("[data-testid=node-5] [data-testid=widget-steps] input").input_value() == "20"
    # Every node of the default workflow is known to the catalog: nothing is flagged.
    assert page.locator("[data-testid=error-banner]").count() == 0
    assert page.locator(".lg-node.missing-type").count() == 0


def test_default_workflow_runs_and_its_image_appears_in_the_save_node(page):
    page.click("[data-testid=run-button]")
    image = page.locator("[data-testid=node-7] [data-testid=node-image]")
    image.wait_for(timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=node-7] [data-testid=node-image]');"
        " return i && i.complete && i.naturalWidth === 64 && i.naturalHeight === 64; }")
    # The job is in the history, and nothing is left running.
    page.locator("[data-testid=history-job] .job-status.success").first.wait_for()
    assert page.locator(".lg-node.executing").count() == 0
    assert page.locator(".lg-node.has-error").count() == 0

    # Running again with nothing changed reuses the cache: the cached nodes are marked.
    page.click("[data-testid=run-button]")
    page.locator("[data-testid=node-5] [data-testid=node-cached]").wait_for(timeout=RUN_TIMEOUT_MS)
    assert page.locator("[data-testid=node-1] [data-testid=node-cached]").count() == 1


def test_incompatible_connection_is_refused_and_a_new_link_replaces_the_old(page):
    before = workflow(page)
    edges = page.locator(".react-flow__edge").count()
    # MODEL output onto the CONDITIONING input "positive": refused while dragging.
    drag_wire(page, "[data-testid=node-1] [data-testid=handle-out-MODEL]",
              "[data-testid=node-5] [data-testid=handle-in-positive]")
    assert workflow(page)["nodes"] == before["nodes"]
    assert page.locator(".react-flow__edge").count() == edges

    # A compatible wire onto a linked input replaces its link: still one link per input.
    drag_wire(page, "[data-testid=node-3] [data-testid=handle-out-CONDITIONING]",
              "[data-testid=node-5] [data-testid=handle-in-positive]")
    assert workflow(page)["nodes"]["5"]["inputs"]["positive"] == {"node": "3", "output": "CONDITIONING"}
    assert page.locator(".react-flow__edge").count() == edges

    # Undo and redo (Ctrl+Z / Ctrl+Shift+Z).
    page.keyboard.press("Control+z")
    assert workflow(page)["nodes"]["5"]["inputs"]["positive"] == {"node": "2", "output": "CONDITIONING"}
    page.keyboard.press("Control+Shift+z")
    assert workflow(page)["nodes"]["5"]["inputs"]["positive"] == {"node": "3", "output": "CONDITIONING"}


def test_out_of_range_value_is_shown_on_its_node(page):
    steps = page.locator("[data-testid=node-5] [data-testid=widget-steps] input")
    steps.fill("0")
    steps.press("Enter")
    assert workflow(page)["nodes"]["5"]["inputs"]["steps"] == 0
    page.click("[data-testid=run-button]")
    # The server refuses the job (HTTP 400); its message is shown on the node, by the input.
    page.locator("[data-testid=node-5].has-error").wait_for()
    message = page.locator("[data-testid=node-5] [data-testid=input-error-steps]").inner_text()
    assert "minimum" in message
    assert page.locator(".lg-node.has-error").count() == 1
    # Fixing the value clears the mark.
    steps.fill("20")
    steps.press("Enter")
    assert page.locator("[data-testid=node-5] [data-testid=input-error-steps]").count() == 0


def test_saved_workflow_reloads_identically(page):
    page.locator("[data-testid=node-2] [data-testid=widget-text]").fill("a small green square at the top")
    page.locator("[data-testid=node-5] [data-testid=control-seed] select").select_option("increment")
    cfg = page.locator("[data-testid=node-5] [data-testid=widget-cfg] input")
    cfg.fill("7.5")
    cfg.press("Enter")
    x, y = center(page, "[data-testid=node-4] [data-testid=node-title]")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 60, steps=5)
    page.mouse.up()
    edited = workflow(page)
    assert edited["nodes"]["5"]["inputs"]["cfg"] == 7.5

    # Auto-save: a reload brings back the same graph.
    page.wait_for_timeout(600)
    page.reload()
    page.wait_for_selector("[data-testid=node-7]")
    assert workflow(page) == edited

    # The server library: save, switch to the default workflow, reload, open the saved one.
    page.click("[data-testid=library-button]")
    page.fill("[data-testid=library-name]", "e2e-saved")
    page.click("[data-testid=library-save]")
    page.locator("[data-testid=library-entry-e2e-saved]").wait_for()
    saved = workflow(page)
    page.click("[data-testid=new-button]")
    page.wait_for_timeout(600)
    page.reload()
    page.wait_for_selector("[data-testid=node-7]")
    assert workflow(page)["nodes"]["2"]["inputs"]["text"] != "a small green square at the top"
    page.click("[data-testid=library-button]")
    page.click("[data-testid=library-open-e2e-saved]")
    page.wait_for_function("() => window.latentgraph.getWorkflow().nodes['2'].inputs.text.includes('green')")
    assert workflow(page) == saved

    # Download gives the same document.
    with page.expect_download() as download:
        page.click("[data-testid=download-button]")
    assert json.loads(Path(download.value.path()).read_text()) == saved


def test_png_from_latentgraph_run_dropped_on_the_canvas_restores_its_workflow(page, server_dirs, tmp_path):
    wf = json.loads(DEFAULT_WORKFLOW.read_text())
    wf["nodes"]["2"]["inputs"]["text"] = "a yellow triangle on a black background"
    wf["nodes"]["5"]["inputs"]["seed"] = 7
    wf["nodes"]["5"]["inputs"]["steps"] = 3
    wf["nodes"]["4"]["ui"]["position"] = [333, 555]
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(wf))
    out = tmp_path / "out"
    subprocess.run(
        [*latentgraph_command(), "run", str(path), "--models", str(server_dirs["models"]), "--out", str(out),
         "--input", str(server_dirs["input"]), "--temp", str(tmp_path / "temp")],
        check=True, capture_output=True, timeout=600)
    pngs = sorted(out.rglob("*.png"))
    assert pngs, "latentgraph run wrote no PNG"

    drop_file(page, pngs[0].read_bytes(), pngs[0].name, "image/png")
    page.wait_for_function("() => window.latentgraph.getWorkflow().nodes['5']?.inputs.seed === 7")
    restored = workflow(page)
    assert node_inputs(restored) == node_inputs(wf)
    assert restored["nodes"]["4"]["ui"]["position"] == [333, 555]


def test_comfyui_workflow_file_dropped_on_the_canvas_opens(page):
    comfy_api = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a blue square", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 3, "steps": 4, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["8", 0]}},
    }
    drop_file(page, json.dumps(comfy_api).encode(), "comfy_api.json", "application/json")
    page.wait_for_function(
        "() => Object.values(window.latentgraph.getWorkflow().nodes).some((n) => n.inputs.text === 'a blue square')")
    wf = workflow(page)
    assert sorted(n["type"] for n in wf["nodes"].values()) == sorted(n["class_type"] for n in comfy_api.values())
    sampler = next(n for n in wf["nodes"].values() if n["type"] == "KSampler")
    assert sampler["inputs"]["steps"] == 4
    # Every link became a wire on the canvas.
    assert page.locator(".react-flow__edge").count() == 9


def test_node_search_copy_paste_and_delete(page):
    count = len(workflow(page)["nodes"])
    # Double-click on empty canvas opens the search box; Enter adds the best match.
    page.mouse.dblclick(760, 780)
    page.fill("[data-testid=search-input]", "vae decode")
    page.keyboard.press("Enter")
    wf = workflow(page)
    assert len(wf["nodes"]) == count + 1
    new_id = max(wf["nodes"], key=int)
    assert wf["nodes"][new_id]["type"] == "VAEDecode"

    # Copy and paste the selected (new) node, then delete the copy.
    page.keyboard.press("Control+c")
    page.mouse.move(900, 700)
    page.keyboard.press("Control+v")
    assert len(workflow(page)["nodes"]) == count + 2
    page.keyboard.press("Delete")
    assert len(workflow(page)["nodes"]) == count + 1
    page.keyboard.press("Control+z")
    assert len(workflow(page)["nodes"]) == count + 2


def test_image_upload_shows_a_thumbnail_in_load_image(page, tmp_path):
    from PIL import Image

    picture = tmp_path / "upload me.png"
    Image.new("RGB", (48, 32), (20, 200, 90)).save(picture)
    page.mouse.dblclick(760, 780)
    page.fill("[data-testid=search-input]", "LoadImage")
    page.keyboard.press("Enter")
    wf = workflow(page)
    node_id = max(wf["nodes"], key=int)
    assert wf["nodes"][node_id]["type"] == "LoadImage"
    node = f"[data-testid=node-{node_id}]"
    page.locator(f"{node} [data-testid=upload-input-image]").set_input_files(str(picture))
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{node} [data-testid=input-thumbnail]');"
        " return i && i.complete && i.naturalWidth === 48; }")
    stored = workflow(page)["nodes"][node_id]["inputs"]["image"]
    assert stored and stored in page.locator(f"{node} [data-testid=widget-image] select").input_value()


def segment_distance(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / ((dx * dx + dy * dy) or 1)))
    return ((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2) ** 0.5


def paint_mask(page, width: int, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag across the mask editor's canvas between two points given in pixels of the picture."""
    box = page.locator("[data-testid=mask-canvas]").bounding_box()
    scale = box["width"] / width
    def at(p):
        return box["x"] + (p[0] + 0.5) * scale, box["y"] + (p[1] + 0.5) * scale
    page.mouse.move(*at(start))
    page.mouse.down()
    page.mouse.move(*at(end), steps=10)
    page.mouse.up()


def save_mask(page, node: str, node_id: str, before: str, input_dir: Path):
    """Save in the mask editor; returns the picture the node's image widget names now."""
    from PIL import Image

    page.click("[data-testid=mask-save]")
    page.locator("[data-testid=mask-editor]").wait_for(state="detached")
    name = workflow(page)["nodes"][node_id]["inputs"]["image"]
    assert name != before and name.endswith(".png")
    assert page.locator(f"{node} [data-testid=widget-image] select").input_value() == name
    page.wait_for_function(  # the thumbnail shows the new file
        f"() => {{ const i = document.querySelector('{node} [data-testid=input-thumbnail]');"
        f" return i && i.complete && i.src.endsWith({json.dumps(name)}); }}")
    with Image.open(input_dir / name) as saved:
        saved.load()
    return name, saved


def assert_mask(saved, original, painted, clear) -> None:
    """Alpha 0 wherever painted(x, y), 255 wherever clear(x, y); RGB exactly the original's."""
    assert saved.mode == "RGBA" and saved.size == original.size
    assert saved.convert("RGB").tobytes() == original.tobytes()
    alpha = saved.getchannel("A")
    width, height = saved.size
    wrong = [(x, y, alpha.getpixel((x, y))) for y in range(height) for x in range(width)
             if (painted(x, y) and alpha.getpixel((x, y)) != 0) or (clear(x, y) and alpha.getpixel((x, y)) != 255)]
    assert not wrong, f"alpha wrong at {wrong[:10]} ({len(wrong)} pixels)"
    assert any(painted(x, y) for y in range(height) for x in range(width))


def test_mask_editor_paints_the_transparent_part_of_a_load_image_picture(page, server_dirs, tmp_path):
    from PIL import Image

    # Random colours, so that any change to the RGB (e.g. a canvas losing it under alpha 0) shows.
    width, height = 96, 64
    original = Image.frombytes("RGB", (width, height), random.Random(0).randbytes(width * height * 3))
    original.save(tmp_path / "mask me.png")
    page.mouse.dblclick(760, 780)
    page.fill("[data-testid=search-input]", "LoadImage")
    page.keyboard.press("Enter")
    node_id = max(workflow(page)["nodes"], key=int)
    node = f"[data-testid=node-{node_id}]"
    page.locator(f"{node} [data-testid=upload-input-image]").set_input_files(str(tmp_path / "mask me.png"))
    page.locator(f"{node} [data-testid=input-thumbnail]").wait_for()
    uploaded = workflow(page)["nodes"][node_id]["inputs"]["image"]

    # Paint a horizontal stroke with an 8-pixel brush.
    page.click(f"{node} [data-testid=edit-mask-image]")
    page.locator("[data-testid=mask-canvas]").wait_for()
    page.fill("[data-testid=mask-brush-size]", "8")
    stroke = (12, 24), (60, 24)
    paint_mask(page, width, *stroke)
    first, saved = save_mask(page, node, node_id, uploaded, server_dirs["input"])
    assert first.startswith("mask_me-mask-")
    def near(x, y, segment, d):
        return segment_distance(x, y, *segment) < d
    assert_mask(saved, original, painted=lambda x, y: near(x, y, stroke, 3),
                clear=lambda x, y: not near(x, y, stroke, 6))

    # Editing it again starts from its transparent part; erase the left of the stroke with a
    # 16-pixel eraser, paint a vertical stroke, save: the RGB under the old mask is still there.
    page.click(f"{node} [data-testid=edit-mask-image]")
    page.wait_for_function(
        "() => { const c = document.querySelector('[data-testid=mask-canvas]');"
        " return c && c.getContext('2d').getImageData(40, 24, 1, 1).data[3] === 255; }")
    page.click("[data-testid=mask-eraser]")
    page.fill("[data-testid=mask-brush-size]", "16")
    erased = (8, 24), (24, 24)
    paint_mask(page, width, *erased)
    page.click("[data-testid=mask-eraser]")
    page.fill("[data-testid=mask-brush-size]", "8")
    stroke2 = (80, 10), (80, 54)
    paint_mask(page, width, *stroke2)
    second, saved = save_mask(page, node, node_id, first, server_dirs["input"])
    assert_mask(saved, original,
                painted=lambda x, y: (near(x, y, stroke, 3) and not near(x, y, erased, 11)) or near(x, y, stroke2, 3),
                clear=lambda x, y: (not near(x, y, stroke, 6) or near(x, y, erased, 6)) and not near(x, y, stroke2, 6))

    # Escape cancels: no new file, the node keeps its picture.
    files = sorted(p.name for p in server_dirs["input"].iterdir())
    page.click(f"{node} [data-testid=edit-mask-image]")
    page.locator("[data-testid=mask-canvas]").wait_for()
    page.click("[data-testid=mask-clear]")
    paint_mask(page, width, (10, 50), (40, 50))
    page.keyboard.press("Escape")
    page.locator("[data-testid=mask-editor]").wait_for(state="detached")
    assert workflow(page)["nodes"][node_id]["inputs"]["image"] == second
    assert sorted(p.name for p in server_dirs["input"].iterdir()) == files


def test_queue_progress_preview_cancel_clear_and_interrupt(page):
    steps = page.locator("[data-testid=node-5] [data-testid=widget-steps] input")
    steps.fill("2000")
    steps.press("Enter")
    page.click("[data-testid=run-button]")
    # The running node is highlighted, with a progress bar and a live preview.
    page.locator("[data-testid=node-5].executing [data-testid=node-progress]").wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator("[data-testid=node-5] [data-testid=node-preview]").wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator("[data-testid=queue-running]").wait_for()

    page.click("[data-testid=run-button]")
    page.click("[data-testid=run-button]")
    pending = page.locator("[data-testid=queue-pending]")
    pending.nth(1).wait_for()
    assert pending.count() == 2
    page.locator("[data-testid=queue-pending] [data-testid^=queue-cancel-]").first.click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=queue-pending]').length === 1")
    page.click("[data-testid=queue-clear]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=queue-pending]').length === 0")

    page.click("[data-testid=interrupt-button]")
    page.locator("[data-testid=history-job] .job-status.interrupted").first.wait_for(timeout=60_000)
    page.wait_for_function("() => !document.querySelector('.lg-node.executing')")
    page.locator("[data-testid=queue-running]").wait_for(state="detached")


def test_execution_error_is_shown_on_the_failing_node(page, server_dirs):
    # A file in the input folder that is not an image passes validation (it is listed) but fails
    # when LoadImage reads it: the websocket `error` event names the node.
    broken = server_dirs["input"] / "broken.png"
    broken.write_bytes(b"not an image at all" * 20)
    try:
        wf = {"format": "latentgraph", "version": 2, "nodes": {
            "1": {"type": "LoadImage", "inputs": {"image": "broken.png"}, "ui": {"position": [100, 100]}},
            "2": {"type": "PreviewImage", "inputs": {"images": {"node": "1", "output": "IMAGE"}},
                  "ui": {"position": [450, 100]}}}}
        drop_file(page, json.dumps(wf).encode(), "broken.json", "application/json")
        page.wait_for_function("() => window.latentgraph.getWorkflow().nodes['1']?.type === 'LoadImage'")
        page.keyboard.press("r")  # refresh the input-image list, as a user would after copying a file
        page.click("[data-testid=run-button]")
        # The error names the input, so it shows next to that input on the node.
        error = page.locator("[data-testid=node-1].has-error [data-testid=input-error-image]")
        error.wait_for(timeout=RUN_TIMEOUT_MS)
        assert "LoadImage" in error.inner_text() and "broken.png" in error.inner_text()
        assert page.locator(".lg-node.has-error").count() == 1
        page.locator("[data-testid=history-job] .job-status.error").first.wait_for()
    finally:
        broken.unlink()
