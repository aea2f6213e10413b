"""The editor's sweep panel (issue 20) and the queue panel's worker column (issue 21), in Debian's
Chromium against a real `latentgraph serve` running the shipped tiny model (64 px, 2 steps).

Set LATENTGRAPH_SCREENSHOTS=docs/editor to write the sweep panel's screenshot the docs show.
"""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from browser_helpers import (  # noqa: F401
    BROWSER_MARKS,
    RUN_TIMEOUT_MS,
    browser,
    drop_file,
    editor_page,
    get_json,
    page,
    server,
    server_dirs,
    workflow,
)
from test_browser_power import post_json, screenshot

pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_MARKS


def set_widget(page, node: str, name: str, value: str) -> None:
    field = page.locator(f"[data-testid=node-{node}] [data-testid=widget-{name}] input")
    field.fill(value)
    field.press("Enter")


def sweep_ids(server: str) -> list[str]:
    return [s["sweep_id"] for s in get_json(server + "/api/sweeps")["sweeps"]]


def open_sweep_panel(page) -> None:
    page.click("[data-testid=sweep-button]")
    page.locator("[data-testid=sweep-panel]").wait_for()


def add_axis(page, axis: int, target: str, values: str) -> None:
    page.click("[data-testid=sweep-add-axis]")
    page.select_option(f"[data-testid=sweep-target-{axis}-0]", target)
    page.fill(f"[data-testid=sweep-values-{axis}-0]", values)


def test_sweep_panel_builds_and_runs_a_2x2_grid(page, server):
    set_widget(page, "5", "steps", "2")
    open_sweep_panel(page)
    add_axis(page, 0, "5.seed", "1, 2")
    add_axis(page, 1, "5.cfg", "4\n7.5")
    page.fill("[data-testid=sweep-axis-label-1]", "guidance")
    # The job count follows what is typed: 2 x 2, then x 2 with repeat, then back.
    assert page.locator("[data-testid=sweep-job-count]").inner_text() == "4"
    page.fill("[data-testid=sweep-repeat]", "2")
    assert page.locator("[data-testid=sweep-job-count]").inner_text() == "8"
    page.fill("[data-testid=sweep-repeat]", "1")
    assert page.locator("[data-testid=sweep-job-count]").inner_text() == "4"
    # The sweep is part of the workflow's ui: saved and auto-saved with it.
    assert workflow(page)["ui"]["sweep"]["axes"][1]["targets"][0] == {"input": "5.cfg", "text": "4\n7.5", "picked": []}

    before = set(sweep_ids(server))
    page.click("[data-testid=sweep-run]")
    page.wait_for_function(
        "() => { const p = document.querySelector('[data-testid=sweep-progress]');"
        " return p && p.dataset.done === '4' && p.dataset.total === '4'; }", timeout=RUN_TIMEOUT_MS)
    page.wait_for_function(
        "() => { const i = document.querySelector('[data-testid=sweep-grid]');"
        " return i && i.complete && i.naturalWidth > 128 && i.naturalHeight > 128; }", timeout=60_000)
    assert page.locator("[data-testid=sweep-run-state]").get_attribute("data-status") == "finished"
    screenshot(page, "sweep")

    # The server made exactly the 4 jobs, with the values typed, on the edited workflow.
    (sweep_id,) = set(sweep_ids(server)) - before
    state = get_json(f"{server}/api/sweeps/{sweep_id}")
    assert state["status"] == "finished" and state["total"] == 4 and state["counts"] == {"success": 4}
    assert sorted((job["values"]["5.seed"], job["values"]["5.cfg"]) for job in state["jobs"]) == [
        (1, 4), (1, 7.5), (2, 4), (2, 7.5)]
    assert state["workflow"]["nodes"]["5"]["inputs"]["steps"] == 2
    assert [axis["name"] for axis in state["axes"]] == ["5.seed", "guidance"]  # the grid's margins
    jobs = [job for job in get_json(server + "/api/jobs?limit=1000")["jobs"] if job.get("sweep_id") == sweep_id]
    assert len(jobs) == 4 and {job["status"] for job in jobs} == {"success"}
    assert sorted((j["workflow"]["nodes"]["5"]["inputs"]["seed"], j["workflow"]["nodes"]["5"]["inputs"]["cfg"])
                  for j in jobs) == [(1, 4), (1, 7.5), (2, 4), (2, 7.5)]
    # The pictures are in the gallery as usual; the grid opens full size.
    page.wait_for_function("() => document.querySelector('[data-testid=gallery-count]').textContent === '4'")
    page.click("[data-testid=sweep-grid]")
    page.locator("[data-testid=lightbox-image]").wait_for()


def test_bad_sweep_values_are_shown_at_their_axis_and_value_and_nothing_is_queued(page, server):
    before = sweep_ids(server)
    # "Sweep this input" on the steps widget's context menu starts an axis with its current value.
    page.locator("[data-testid=node-5] [data-testid=input-steps]").click(button="right")
    page.click("[data-testid=menu-sweep-input]")
    page.locator("[data-testid=sweep-panel]").wait_for()
    assert page.locator("[data-testid=sweep-target-0-0]").input_value() == "5.steps"
    assert page.locator("[data-testid=sweep-values-0-0]").input_value() == "20"
    page.fill("[data-testid=sweep-values-0-0]", "2, 0")
    # A second axis with a zipped input of another length, and a combo axis with two choices.
    add_axis(page, 1, "5.seed", "1, 2")
    page.click("[data-testid=sweep-add-input-1]")
    page.select_option("[data-testid=sweep-target-1-1]", "5.cfg")
    page.fill("[data-testid=sweep-values-1-1]", "4")
    page.click("[data-testid=sweep-add-axis]")
    page.select_option("[data-testid=sweep-target-2-0]", "5.sampler_name")
    page.check("[data-testid=sweep-choice-2-0-heun]")
    assert page.locator("[data-testid=sweep-axis-size-2]").inner_text() == "2 values"  # euler (current) + heun

    page.click("[data-testid=sweep-run]")
    error = page.locator("[data-testid=sweep-target-error-0-0]")
    error.wait_for()
    assert "minimum" in error.inner_text() and error.get_attribute("data-value") == "1"
    assert "bad" in page.locator("[data-testid=sweep-value-0-0-1]").get_attribute("class")
    assert "bad" not in page.locator("[data-testid=sweep-value-0-0-0]").get_attribute("class")
    assert "zipped" in page.locator("[data-testid=sweep-axis-error-1]").inner_text()
    assert page.locator("[data-testid=sweep-axis-error-2]").count() == 0
    # Nothing was queued, and the graph's own nodes are not marked.
    assert sweep_ids(server) == before
    queue = get_json(server + "/api/queue")
    assert queue["running"] is None and queue["pending"] == []
    assert page.locator(".lg-node.has-error").count() == 0
    assert page.locator("[data-testid=sweep-run-state]").count() == 0


def test_cancel_sweep_stops_it_and_a_reload_shows_where_it_stands(page, server):
    set_widget(page, "5", "steps", "3000")  # long enough to cancel while the first job runs
    open_sweep_panel(page)
    add_axis(page, 0, "5.seed", "1..3")
    assert page.locator("[data-testid=sweep-job-count]").inner_text() == "3"
    before = set(sweep_ids(server))
    page.click("[data-testid=sweep-run]")
    page.locator("[data-testid=node-5].executing [data-testid=node-progress]").wait_for(timeout=RUN_TIMEOUT_MS)
    (sweep_id,) = set(sweep_ids(server)) - before
    page.reload()  # the panel stays closed until asked, and the sweep's progress comes back
    page.wait_for_selector("[data-testid=node-7]")
    open_sweep_panel(page)
    page.locator("[data-testid=sweep-run-state][data-status=running]").wait_for()
    assert page.locator("[data-testid=sweep-progress]").get_attribute("data-total") == "3"

    page.click("[data-testid=sweep-cancel]")
    page.locator("[data-testid=sweep-run-state][data-status=finished]").wait_for(timeout=60_000)
    state = get_json(f"{server}/api/sweeps/{sweep_id}")
    assert state["status"] == "finished" and sum(state["counts"].values()) == 3
    assert set(state["counts"]) <= {"interrupted", "cancelled"}, state["counts"]
    assert page.locator("[data-testid=sweep-progress]").get_attribute("data-done") == "3"
    assert page.locator("[data-testid=sweep-grid]").count() == 0  # nothing succeeded: no grid


def test_a_sweep_over_the_servers_limit_is_queued_once_confirmed(page, server):
    # The server's limit is 10,000 jobs: its refusal is played here for a 2-job sweep, then the
    # confirmed POST goes through to the real server.
    bodies: list[dict] = []

    def limit(route):
        body = json.loads(route.request.post_data)
        bodies.append(body)
        if body.get("confirm") is True:
            route.continue_()
            return
        error = {"kind": "too_many_jobs", "node_id": None, "input": None, "axis": None, "value": None,
                 "message": "sweep: 2 jobs, more than 1: confirm it"}
        route.fulfill(status=400, content_type="application/json",
                      body=json.dumps({"error": error["message"], "errors": [error]}))

    page.route("**/api/sweep", limit)
    set_widget(page, "5", "steps", "1")
    open_sweep_panel(page)
    add_axis(page, 0, "5.seed", "5, 6")
    page.click("[data-testid=sweep-run]")
    assert "confirm" in page.locator("[data-testid=sweep-error]").inner_text()
    assert page.locator("[data-testid=sweep-run-state]").count() == 0
    page.click("[data-testid=sweep-confirm]")
    page.locator("[data-testid=sweep-run-state][data-status=finished]").wait_for(timeout=RUN_TIMEOUT_MS)
    assert [body.get("confirm") for body in bodies] == [False, True]
    assert bodies[0]["sweep"] == bodies[1]["sweep"] == {"axes": [{"inputs": {"5.seed": [5, 6]}}], "repeat": 1}
    assert page.locator("[data-testid=sweep-error]").count() == 0


def wait_for_grid(server: str, sweep_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        state = get_json(f"{server}/api/sweeps/{sweep_id}")
        if state["status"] == "finished":
            return state
        time.sleep(0.3)
    raise AssertionError(f"sweep {sweep_id} did not finish")


def test_dropping_a_grid_png_restores_its_workflow_and_sweep_in_the_panel(page, server):
    wf = workflow(page)
    wf["nodes"]["5"]["inputs"]["steps"] = 1
    wf["nodes"]["2"]["title"] = "Prompt"
    sweep = {"axes": [{"inputs": {"5.seed": [3, 4], "5.sampler_name": ["euler", "heun"]}, "label": "seed / sampler"},
                      {"input": "Prompt.text", "values": ["a red circle", "a blue square, small"]}]}
    queued = post_json(server + "/api/sweep", {"workflow": wf, "sweep": sweep})
    state = wait_for_grid(server, queued["sweep_id"])
    with urllib.request.urlopen(server + state["grid"]["url"], timeout=10) as response:
        grid = response.read()

    page.click("[data-testid=new-button]")  # a fresh default graph, with no sweep
    drop_file(page, grid, "sweep-grid.png", "image/png")
    page.locator("[data-testid=sweep-panel]").wait_for()
    page.wait_for_function("() => window.latentgraph.getWorkflow().nodes['5'].inputs.steps === 1")
    assert page.locator("[data-testid=sweep-target-0-0]").input_value() == "5.seed"
    assert page.locator("[data-testid=sweep-values-0-0]").input_value() == "3, 4"
    assert page.locator("[data-testid=sweep-target-0-1]").input_value() == "5.sampler_name"
    assert page.locator("[data-testid=sweep-choice-0-1-heun]").is_checked()
    assert page.locator("[data-testid=sweep-choice-0-1-euler]").is_checked()
    assert not page.locator("[data-testid=sweep-choice-0-1-lms]").is_checked()
    # An input named by the node's title becomes its id; a prompt with a comma stays one value.
    assert page.locator("[data-testid=sweep-target-1-0]").input_value() == "2.text"
    assert page.locator("[data-testid=sweep-values-1-0]").input_value() == "a red circle\na blue square, small"
    assert page.locator("[data-testid=sweep-job-count]").inner_text() == "4"
    assert workflow(page)["ui"]["sweep"]["axes"][0]["label"] == "seed / sampler"


def test_queue_panel_shows_the_worker_column_only_when_jobs_have_workers(page, server):
    page.click("[data-testid=queue-button]")
    page.locator("[data-testid=queue-panel]").wait_for()
    page.wait_for_timeout(300)
    assert page.locator("[data-testid=job-worker]").count() == 0  # the local runner: no workers

    # A worker pool's queue (serve --ray), served in place of the real one: running on two workers.
    def job(job_id: str, status: str, worker: str | None) -> dict:
        return {"job_id": job_id, "status": status, "created": time.time(), "worker": worker,
                "images": [], "errors": []}

    running = [job("ray-job-1", "running", "w1"), job("ray-job-2", "running", "w2")]
    fake = {"running": running[0], "running_jobs": running, "pending": [job("ray-job-3", "pending", None)]}
    page.route("**/api/queue", lambda route: route.fulfill(status=200, content_type="application/json",
                                                            body=json.dumps(fake)))
    page.click("[data-testid=panel-close]")
    page.click("[data-testid=queue-button]")
    page.locator("[data-testid=queue-running] [data-testid=job-worker]").nth(1).wait_for()
    assert page.locator("[data-testid=queue-running] [data-testid=job-worker]").all_inner_texts() == ["w1", "w2"]
    assert page.locator("[data-testid=queue-pending] [data-testid=job-worker]").inner_text() == "—"
    assert page.locator("[data-testid=queue-count]").inner_text() == "3"
