"""Sweeps in the engine, the Python API and the command line (issue 20), on the shipped tiny-shapes
model: a 3 x 3 sweep equals 9 single runs, encodes each prompt once and makes a grid that reopens
as its workflow and sweep; bad sweeps are refused before anything runs, naming axis and value."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import read_png, shipped_model_executor, txt2img
from test_cli import EXAMPLES, cli

from latentgraph.graph.executor import Executor
from latentgraph.graph.png_metadata import sweep_from_png
from latentgraph.graph.sweep import MAX_JOBS, Sweep, SweepInvalid, from_options, parse_values, plan_sweep
from latentgraph.graph.workflow import load_workflow

PROMPTS = ["a large red circle on a white background", "a small blue square on a black background, at the top",
           "a large yellow triangle on a green background"]
SEEDS = [1, 2, 3]
STEPS = 4


def three_by_three() -> dict:
    return {"axes": [{"input": "sampler.seed", "values": SEEDS}, {"input": "pos.text", "values": PROMPTS,
                                                                  "label": "prompt"}]}


def find_block(sheet: np.ndarray, block: np.ndarray) -> list[tuple[int, int]]:
    """Where `block` appears, pixel for pixel, in `sheet` ((row, column) of its top-left corner)."""
    h, w = block.shape[:2]
    rows = np.lib.stride_tricks.sliding_window_view(sheet, (1, w, 3))[:, :, 0, 0]  # (H, W-w+1, w, 3)
    candidates = np.argwhere((rows == block[0]).all(axis=(2, 3)))
    return [(int(y), int(x)) for y, x in candidates
            if y + h <= sheet.shape[0] and (sheet[y:y + h, x:x + w] == block).all()]


def test_three_by_three_sweep_equals_nine_single_runs_and_encodes_each_prompt_once(tmp_path):
    executor = shipped_model_executor(tmp_path)
    workflow = txt2img("tiny-shapes", steps=STEPS)
    result = executor.sweep(workflow, three_by_three())
    assert [job.status for job in result.jobs] == ["success"] * 9

    # The prompt feeds more of the graph than the seed: it varies slowest, so each prompt is
    # encoded once, and the checkpoint and the negative prompt once in all.
    assert [job.job.values["pos.text"] for job in result.jobs] == [p for p in PROMPTS for _ in SEEDS]
    totals = result.totals()
    assert totals["pos"] == {"executed": 3, "cached": 6, "error": 0}
    assert totals["ckpt"]["executed"] == totals["neg"]["executed"] == totals["latent"]["executed"] == 1
    assert totals["sampler"]["executed"] == totals["save"]["executed"] == 9
    report = result.report()
    for job in report["jobs"]:  # per job: the encoder ran exactly in the first job of each prompt
        status = {node["node_id"]: node["status"] for node in job["nodes"]}
        assert status["pos"] == ("executed" if job["values"]["sampler.seed"] == SEEDS[0] else "cached")
    assert report["totals"]["executed"] == sum(t["executed"] for t in totals.values())

    # Each picture equals a single run of the same values with a fresh executor.
    pictures = {}
    for job in result.jobs:
        [image] = job.result.images
        pictures[job.job.coords] = read_png(image["path"])
        single = txt2img("tiny-shapes", prompt=job.job.values["pos.text"], seed=job.job.values["sampler.seed"],
                         steps=STEPS)
        fresh = Executor(executor.settings)
        [alone] = fresh.run(single).images
        assert (read_png(alone["path"]) == pictures[job.job.coords]).all(), job.job.values
    assert len({p.tobytes() for p in pictures.values()}) == 9

    # The grid: each picture in its column (seed) and row (prompt); it reopens as workflow and sweep.
    grid_path = result.save_grid(tmp_path / "grid.png")
    sheet = read_png(grid_path)
    places = {coords: find_block(sheet, picture) for coords, picture in pictures.items()}
    assert all(len(found) == 1 for found in places.values()), places
    columns = {coords: found[0][1] for coords, found in places.items()}
    rows = {coords: found[0][0] for coords, found in places.items()}
    for x in range(3):
        for y in range(3):
            assert columns[x, y] == columns[x, 0] and rows[x, y] == rows[0, y]
    assert columns[0, 0] < columns[1, 0] < columns[2, 0] and rows[0, 0] < rows[0, 1] < rows[0, 2]
    assert load_workflow(grid_path) == load_workflow(workflow)
    assert Sweep.from_json(sweep_from_png(grid_path)).to_json() == Sweep.from_json(three_by_three()).to_json()


def test_sweeping_a_post_processing_input_reruns_only_that_tail(tmp_path):
    executor = shipped_model_executor(tmp_path)
    workflow = json.loads((EXAMPLES / "txt2img.json").read_text())
    workflow["nodes"]["sampler"]["inputs"]["steps"] = 2
    result = executor.sweep(workflow, {"axes": [{"input": "sharpen.alpha", "values": [0.0, 0.5, 1.0]}]})
    totals = result.totals()
    assert totals["sampler"]["executed"] == totals["decode"]["executed"] == 1
    assert totals["sharpen"]["executed"] == totals["save"]["executed"] == 3
    assert [json.loads(json.dumps(j.job.values)) for j in result.jobs] == [{"sharpen.alpha": a} for a in (0, 0.5, 1)]


def test_repeat_increases_every_seed_and_interrupt_cancels_the_rest(tmp_path):
    executor = shipped_model_executor(tmp_path)
    plan = plan_sweep(txt2img("tiny-shapes", seed=40, steps=2), {"axes": [], "repeat": 3}, executor.settings)
    assert [job.values for job in plan.jobs] == [{"sampler.seed": s} for s in (40, 41, 42)]
    assert [job.workflow["nodes"]["sampler"]["inputs"]["seed"] for job in plan.jobs] == [40, 41, 42]
    assert plan.axes[0].labels == ["seed +0", "seed +1", "seed +2"]

    def stop_in_the_second_job(event):
        if event["type"] == "progress" and event["sweep_job"] == 1:
            executor.interrupt()

    result = executor.sweep(txt2img("tiny-shapes", seed=40, steps=2), {"repeat": 3}, on_event=stop_in_the_second_job)
    assert [job.status for job in result.jobs] == ["success", "interrupted", "cancelled"]
    assert result.interrupted and result.jobs[2].errors[0]["kind"] == "interrupted"


def refused(workflow, sweep, settings, **options) -> list[dict]:
    with pytest.raises(SweepInvalid) as caught:
        plan_sweep(workflow, sweep, settings, **options)
    return [e.to_json() for e in caught.value.errors]


def test_bad_sweeps_are_refused_naming_axis_and_value_and_nothing_runs(tmp_path):
    executor = shipped_model_executor(tmp_path)
    workflow = txt2img("tiny-shapes", steps=2)
    errors = refused(workflow, {"axes": [
        {"input": "sampler.cfg", "values": [4, 400, "much"]},
        {"input": "sampler.sampler_name", "values": ["euler", "not-a-sampler"]},
        {"inputs": {"pos.text": ["a", "b", "c"], "neg.text": ["x", "y"]}},
        {"input": "nowhere.seed", "values": [1]},
        {"input": "sampler.sed", "values": [1]},
    ]}, executor.settings)
    where = {(e["kind"], e["axis"], e["value"]) for e in errors}
    assert where == {("out_of_range", 0, 1), ("bad_value", 0, 2), ("not_in_choices", 1, 1),
                     ("unequal_lengths", 2, None), ("unknown_node", 3, None), ("unknown_input", 4, None)}
    messages = {(e["axis"], e["value"]): e["message"] for e in errors}
    assert messages[0, 1].startswith("sweep axis 1 (sampler.cfg), value 2 (400): KSampler 'sampler', input 'cfg'")
    assert "not-a-sampler" in messages[1, 1] and "pos.text has 3, neg.text has 2" in messages[2, None]
    assert "'nowhere'" in messages[3, None] and "no input 'sed'" in messages[4, None]
    cfg_error = next(e for e in errors if e["kind"] == "out_of_range")
    assert (cfg_error["node_id"], cfg_error["input"]) == ("sampler", "cfg")

    # Too many jobs for the limit unless confirmed; the default limit is 10,000.
    big = {"axes": [{"input": "sampler.seed", "values": [1, 2, 3]}, {"input": "sampler.cfg", "values": [4, 5]}]}
    [error] = refused(workflow, big, executor.settings, max_jobs=5)
    assert error["kind"] == "too_many_jobs" and "6 jobs, more than 5" in error["message"]
    assert len(plan_sweep(workflow, big, executor.settings, max_jobs=5, confirm=True).jobs) == 6
    assert MAX_JOBS == 10_000
    [error] = refused(workflow, {"axes": [{"input": "sampler.seed", "values": list(range(101))},
                                          {"input": "sampler.steps", "values": list(range(1, 101))}]},
                      executor.settings)
    assert error["kind"] == "too_many_jobs" and "10,100 jobs" in error["message"]

    # A sampler and scheduler the sweep pairs that do not go together; an input of a node that does not run.
    crossed = refused(workflow, {"axes": [{"input": "sampler.sampler_name", "values": ["euler", "lcm"]},
                                          {"input": "sampler.scheduler", "values": ["normal", "karras"]}]},
                      executor.settings)
    assert crossed and all(e["node_id"] == "sampler" and "sweep job" in e["message"] for e in crossed)
    muted = txt2img("tiny-shapes", steps=2)
    muted["nodes"]["extra"] = {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64}}
    [error] = refused(muted, {"axes": [{"input": "extra.width", "values": [64, 128]}]}, executor.settings)
    assert error["kind"] == "not_run" and error["axis"] == 0

    # Malformed documents and command-line options.
    assert refused(workflow, {"axes": [{"input": "sampler.seed", "values": []}]}, executor.settings)[0]["kind"] == \
        "empty_axis"
    assert refused(workflow, {"axes": "sampler.seed"}, executor.settings)[0]["kind"] == "bad_format"
    assert refused(workflow, {"axes": [], "repeat": 0}, executor.settings)[0]["kind"] == "bad_format"
    with pytest.raises(ValueError, match="--zip"):
        from_options([(True, "neg.text=a,b")])
    assert not list(executor.settings.output.iterdir())  # nothing ran


def test_value_syntax_of_the_command_line():
    assert parse_values("1,2, 3") == ["1", "2", "3"]
    assert parse_values('["a red circle, large", "b"]') == ["a red circle, large", "b"]
    assert parse_values("1..4") == [1, 2, 3, 4]
    assert parse_values("4..8:1.5") == [4.0, 5.5, 7.0]
    assert parse_values("10..4:-3") == [10, 7, 4]
    assert parse_values("a..b") == ["a..b"]  # text, not a range
    sweep = from_options([(False, "pos.text=[\"x, y\", \"z\"]"), (True, "neg.text=,blurry"), (False, "s.cfg=4,6")], 2)
    assert sweep.to_json() == {"axes": [{"inputs": {"pos.text": ["x, y", "z"], "neg.text": ["", "blurry"]}},
                                        {"inputs": {"s.cfg": ["4", "6"]}}], "repeat": 2}


def test_command_line_sweep_writes_pictures_grid_and_report(tmp_path):
    report = tmp_path / "report.json"
    (tmp_path / "sweep.json").write_text(json.dumps({"axes": [{"input": "sampler.cfg", "values": [4, 6]}]}))
    done = cli("run", EXAMPLES / "txt2img.json", "--set", "sampler.steps=2", "--sweep-file", "sweep.json",
               "--sweep", 'Positive prompt.text=["a large red circle, on a white background", "a blue square"]',
               "--zip", "negative.text=,blurry", "--grid", "grid.png", "--report", report, "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = json.loads(report.read_text())
    assert [r["status"] for r in runs["runs"]] == ["success"] * 4
    assert runs["totals"]["nodes"]["positive"]["executed"] == runs["totals"]["nodes"]["negative"]["executed"] == 2
    assert runs["totals"]["nodes"]["ckpt"]["executed"] == 1
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 4
    embedded = [load_workflow(p)["nodes"] for p in pngs]
    assert [(n["positive"]["inputs"]["text"], n["negative"]["inputs"]["text"], n["sampler"]["inputs"]["cfg"])
            for n in embedded] == [("a large red circle, on a white background", "", 4), (
                "a large red circle, on a white background", "", 6), ("a blue square", "blurry", 4),
                ("a blue square", "blurry", 6)]
    grid = tmp_path / "grid.png"
    assert load_workflow(grid)["nodes"]["sampler"]["inputs"]["steps"] == 2
    assert [list(axis["inputs"]) for axis in sweep_from_png(grid)["axes"]] == [
        ["sampler.cfg"], ["Positive prompt.text", "negative.text"]]



def test_command_line_refuses_bad_sweeps_before_running_anything(tmp_path, capsys):
    from latentgraph import cli as command

    out = ["--out", str(tmp_path / "out"), "--models", str(tmp_path / "models"), "--device", "cpu"]
    code = command.main(["run", str(EXAMPLES / "txt2img.json"), "--sweep", "sampler.cfg=4,500", "--sweep",
                         "sampler.nope=1", *out])
    err = capsys.readouterr().err
    assert code == 3 and "sweep axis 1 (sampler.cfg), value 2 (500)" in err and "no input 'nope'" in err
    code = command.main(["run", str(EXAMPLES / "txt2img.json"), "--sweep", "sampler.seed=1..3", "--max-jobs", "2",
                         *out])
    assert code == 3 and "--yes" in capsys.readouterr().err
    assert command.main(["run", str(EXAMPLES / "txt2img.json"), "--zip", "sampler.seed=1", *out]) == 2
    assert "--zip" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_workflow_with_subgraphs_sweeps_a_subgraph_input_and_an_inner_node(tmp_path):
    executor = shipped_model_executor(tmp_path)
    workflow = EXAMPLES / "subgraph.json"
    plan = plan_sweep(workflow, {"axes": [{"input": "upscale.scale_by", "values": [1.5, 2]},
                                          {"input": "upscale/2.sharpen_radius", "values": [1, 3]}]},
                      executor.settings)
    flat = [(job.workflow["nodes"]["upscale/1"]["inputs"]["scale_by"],
             job.workflow["nodes"]["upscale/2"]["inputs"]["sharpen_radius"]) for job in plan.jobs]
    assert sorted(flat) == [(1.5, 1), (1.5, 3), (2, 1), (2, 3)]
    assert plan.slowest_first == [0, 1]  # the scale feeds the sharpen: it varies slowest
    assert plan.workflow == load_workflow(workflow)  # the grid embeds the workflow as written
    [error] = refused(workflow, {"axes": [{"input": "upscale.scale_by", "values": [1.5, 200]}]}, executor.settings)
    assert (error["kind"], error["node_id"], error["input"], error["axis"], error["value"]) == (
        "out_of_range", "upscale", "scale_by", 0, 1)
