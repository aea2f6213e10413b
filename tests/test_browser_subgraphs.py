"""Subgraphs in the editor, end to end (issue 25), in Debian's Chromium against a real
`latentgraph serve`: make one from a selection, run it (its inner nodes hit the cache of the same
nodes flat), open it and edit inside, errors named by path, save it to the components library and
reuse it in another workflow, ComfyUI subgraph workflows; and checkpoint-aware defaults.

Set LATENTGRAPH_SCREENSHOTS=docs/editor to write the screenshots the docs show.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser_helpers import (  # noqa: F401
    BROWSER_MARKS,
    RUN_TIMEOUT_MS,
    browser,
    drop_file,
    editor_page,
    get_json,
    server,
    server_dirs,
    workflow,
)
from test_browser_power import image_ids, node_title, screenshot, search_results, set_number

pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_MARKS

COMFY_SUBGRAPH = Path(__file__).parent / "data" / "comfyui" / "subgraph_ui.json"


@pytest.fixture
def big(browser, server):
    with editor_page(browser, server, 1600, 1000) as page:
        yield page


def run_and_wait_for_image(page, previous: str | None = None) -> str:
    page.click("[data-testid=run-button]")
    page.wait_for_function(
        "(previous) => { const i = document.querySelector('[data-testid=node-7] [data-testid=node-image]');"
        " return i && i.dataset.imageId !== previous; }", arg=previous, timeout=RUN_TIMEOUT_MS)
    page.locator("[data-testid=history-job] .job-status.success").first.wait_for(timeout=RUN_TIMEOUT_MS)
    return image_ids(page, "7")[0]


def wait_for_subgraph_node(page) -> None:
    page.wait_for_function(
        "() => Object.values(window.latentgraph.getWorkflow().nodes).some((n) => n.type === 'Subgraph')")


def subgraph_node(wf: dict) -> tuple[str, dict]:
    [(node_id, node)] = [(k, n) for k, n in wf["nodes"].items() if n["type"] == "Subgraph"]
    return node_id, node


def test_make_a_subgraph_run_it_open_it_and_edit_inside(big):
    page = big
    set_number(page, "5", "steps", 2)
    flat_image = run_and_wait_for_image(page)

    # Select the sampler and the decoder, make a subgraph: one node whose inputs and outputs are
    # the wires that crossed the selection.
    page.click(node_title("5"))
    page.click(node_title("6"), modifiers=["Shift"])
    page.keyboard.press("Control+Shift+E")
    wait_for_subgraph_node(page)
    wf = workflow(page)
    node_id, node = subgraph_node(wf)
    assert wf["version"] == 3 and "5" not in wf["nodes"] and "6" not in wf["nodes"]
    definition = wf["subgraphs"][node["subgraph"]]
    assert sorted(definition["nodes"]) == ["5", "6"]
    assert {i["name"]: i["type"] for i in definition["inputs"]} == {
        "model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING", "latent_image": "LATENT",
        "vae": "VAE"}
    assert node["inputs"]["vae"] == {"node": "1", "output": "VAE"}
    assert definition["outputs"] == [{"name": "IMAGE", "type": "IMAGE", "from": {"node": "6", "output": "IMAGE"}}]
    assert wf["nodes"]["7"]["inputs"]["images"] == {"node": node_id, "output": "IMAGE"}
    screenshot(page, "subgraph-node")

    # The engine expands it before validation: the inner nodes are the same nodes as before, so the
    # run is all cache hits and the image is the same image.
    assert run_and_wait_for_image(page, previous="none") == flat_image
    page.locator(f"[data-testid=node-{node_id}] [data-testid=node-cached]").wait_for()

    # Open it: the breadcrumb shows where we are; the inner nodes and the subgraph's panels are there.
    page.click(f"[data-testid=node-{node_id}] [data-testid=open-subgraph]")
    page.locator("[data-testid=breadcrumb]").wait_for()
    page.locator("[data-testid=subgraph-inputs]").wait_for()
    page.locator("[data-testid=subgraph-outputs] [data-testid=io-IMAGE]").wait_for()
    assert page.locator("[data-testid=node-5][data-node-type=KSampler]").count() == 1
    screenshot(page, "subgraph-inside")

    # A broken value inside is named by its path, on the inner node here and on the outer node outside.
    set_number(page, "5", "steps", 0)
    page.click("[data-testid=run-button]")
    page.locator("[data-testid=node-5].has-error [data-testid=input-error-steps]").wait_for()
    assert f"{node_id}/5" in page.inner_text("[data-testid=node-5] [data-testid=input-error-steps]")
    page.click("[data-testid=breadcrumb-0]")
    page.locator(f"[data-testid=node-{node_id}].has-error").wait_for()
    assert f"{node_id}/5" in page.inner_text(f"[data-testid=node-{node_id}] [data-testid=node-error]")

    # Fixed inside, saved into the definition, run again: a new image (the sampler re-ran).
    page.click(f"[data-testid=node-{node_id}] [data-testid=open-subgraph]")
    set_number(page, "5", "steps", 3)
    page.click("[data-testid=breadcrumb-0]")
    page.locator("[data-testid=breadcrumb]").wait_for(state="detached")
    definition = workflow(page)["subgraphs"][node["subgraph"]]
    assert definition["nodes"]["5"]["inputs"]["steps"] == 3
    assert run_and_wait_for_image(page, previous=flat_image) != flat_image
    # Out here, undo takes back each visit inside as one step.
    steps = lambda: workflow(page)["subgraphs"][node["subgraph"]]["nodes"]["5"]["inputs"]["steps"]  # noqa: E731
    page.keyboard.press("Control+z")
    assert steps() == 0
    page.keyboard.press("Control+z")
    assert steps() == 2


def test_components_are_saved_and_reused_in_another_workflow(big, server):
    page = big
    page.click(node_title("5"))
    page.click(node_title("6"), modifiers=["Shift"])
    page.keyboard.press("Control+Shift+E")
    wait_for_subgraph_node(page)
    node_id, node = subgraph_node(workflow(page))
    page.click(node_title(node_id), button="right")
    page.click("[data-testid=menu-save-component]")
    page.fill("[data-testid=dialog-input]", "sample and decode")
    page.click("[data-testid=dialog-save]")
    page.locator("[data-testid=toast-success]").wait_for()
    listed = [c["name"] for c in get_json(server + "/api/components")["components"]]
    assert "sample and decode" in listed
    saved = get_json(server + "/api/components/sample%20and%20decode")["definition"]
    assert sorted(saved["nodes"]) == ["5", "6"]

    # Another workflow (a new tab): the component is in the node library and in the search box.
    page.click("[data-testid=tab-new]")
    page.locator("[data-testid=tab-1][data-active=true]").wait_for()
    page.locator("[data-testid='palette-component-sample and decode']").wait_for()
    page.mouse.dblclick(800, 900)
    page.fill("[data-testid=search-input]", "sample dec")
    assert search_results(page)[0] == "component-sample and decode"
    page.keyboard.press("Enter")
    wait_for_subgraph_node(page)
    wf = workflow(page)
    new_id, inserted = subgraph_node(wf)
    assert wf["subgraphs"][inserted["subgraph"]]["nodes"] == saved["nodes"]
    sockets = page.eval_on_selector_all(f"[data-testid=node-{new_id}] [data-testid^=handle-in-]",
                                        "els => els.map((e) => e.dataset.testid)")
    assert "handle-in-latent_image" in sockets and "handle-in-vae" in sockets
    assert page.locator(f"[data-testid=node-{new_id}] [data-testid=handle-out-IMAGE]").count() == 1


def test_a_comfyui_workflow_with_nested_subgraphs_opens_and_each_level_can_be_entered(big):
    page = big
    drop_file(page, COMFY_SUBGRAPH.read_bytes(), COMFY_SUBGRAPH.name, "application/json")
    page.wait_for_function("() => window.latentgraph.getWorkflow().nodes['10']?.type === 'Subgraph'")
    assert page.locator(".lg-node.missing-type").count() == 0
    page.click("[data-testid=node-10] [data-testid=open-subgraph]")
    page.locator("[data-testid=node-12] [data-testid=open-subgraph]").click()
    assert page.locator("[data-testid=breadcrumb] .crumb-current").count() == 1
    assert page.locator("[data-testid=breadcrumb-1]").count() == 1  # two levels deep
    page.locator("[data-testid=node-30]").wait_for()
    page.click("[data-testid=breadcrumb-0]")
    page.locator("[data-testid=node-10]").wait_for()
    # Going in and out changed nothing.
    assert json.dumps(workflow(page)["subgraphs"], sort_keys=True) == json.dumps(
        page.evaluate("window.latentgraph.getWorkflow().subgraphs"), sort_keys=True)


def test_new_nodes_take_defaults_that_suit_the_loaded_checkpoint(big, server):
    page = big
    details = get_json(server + "/api/checkpoints").get("details", {}).get("tiny-shapes")
    assert details and details["resolution"] == [64, 64]
    page.mouse.dblclick(800, 900)
    page.fill("[data-testid=search-input]", "empty latent")
    page.keyboard.press("Enter")
    wf = workflow(page)
    new_id = max(wf["nodes"], key=int)
    assert wf["nodes"][new_id]["type"] == "EmptyLatentImage"
    assert (wf["nodes"][new_id]["inputs"]["width"], wf["nodes"][new_id]["inputs"]["height"]) == (64, 64)
