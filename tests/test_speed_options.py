"""--compile, --threads and the lean run path: compiled runs equal eager ones within float
tolerance and compile once; thread settings reach torch and bad ones are refused; folder digests
and schedules are reused while nothing changed, and change when something did."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from helpers import read_png, txt2img

from latentgraph.cli import main
from latentgraph.graph import cache
from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the bit-exact tests need conftest's fixed count


def test_compiled_runs_equal_eager_ones_and_compile_once(settings):
    from torch._dynamo.utils import counters

    from latentgraph.nodes.compiled import _COMPILED

    eager = Executor(settings)
    workflows = [txt2img(seed=seed, steps=2, width=32, height=32) for seed in (1, 2)]
    expected = [read_png(eager.run(wf).images[0]["path"]) for wf in workflows]
    compiled = Executor(Settings(**{**vars(settings), "compile": True}))
    assert compiled.keys(workflows[0]) != eager.keys(workflows[0])  # results computed otherwise are kept apart
    first = read_png(compiled.run(workflows[0]).images[0]["path"])
    graphs = counters["stats"]["unique_graphs"]
    ((model, _, vae),) = compiled.loaded_models()
    assert set(_COMPILED[model.unet]) == {"forward"} and set(_COMPILED[vae.vae]) == {"decode"}
    second = read_png(compiled.run(workflows[1]).images[0]["path"])
    assert counters["stats"]["unique_graphs"] == graphs  # the second run reused what the first compiled
    for ours, theirs in zip((first, second), expected):
        assert ours.std() > 1 and np.abs(ours.astype(int) - theirs).max() <= 2


def test_threads_setting_reaches_torch_and_bad_values_are_refused(settings, restore_threads, tmp_path, capsys):
    Executor(Settings(**{**vars(settings), "threads": 1}))
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="threads"):
        Settings(threads=0)
    assert main(["run", str(tmp_path / "none.json"), "--threads", "0"]) == 2
    assert "threads must be a whole number of at least 1" in capsys.readouterr().err
    assert main(["serve", "--threads", "-1"]) == 2


def test_folder_digest_is_reused_until_a_file_in_it_changes(tmp_path):
    folder = tmp_path / "ckpt"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "weights.bin").write_bytes(b"a" * 100)
    (folder / "model_index.json").write_text("{}")
    first = cache.file_digest(folder)
    hashed = []
    original = cache.hashlib.sha256
    cache.hashlib.sha256 = lambda *a: hashed.append(1) or original(*a)
    try:
        assert cache.file_digest(folder) == first and hashed == []  # nothing hashed again
    finally:
        cache.hashlib.sha256 = original
    later = time.time_ns() + 10**9
    (folder / "unet" / "weights.bin").write_bytes(b"b" * 100)  # same size, new content and time
    os.utime(folder / "unet" / "weights.bin", ns=(later, later))
    changed = cache.file_digest(folder)
    assert changed != first
    (folder / "unet" / "extra.json").write_text("{}")
    assert cache.file_digest(folder) not in (first, changed)


def test_a_schedule_is_built_once_and_each_run_gets_a_fresh_copy(executor, monkeypatch):
    from latentgraph.nodes import sampling

    monkeypatch.setattr(sampling, "_SCHEDULES", {})  # other tests in this process may have built these grids
    executor.run(txt2img(seed=1, steps=5, sampler_name="dpmpp_2m", scheduler="karras"))
    ((model, _, _),) = executor.loaded_models()
    built = []
    original = sampling.make_scheduler
    sampling.make_scheduler = lambda *a, **k: built.append(a) or original(*a, **k)
    try:
        first = sampling.new_schedule(model, "dpmpp_2m", "karras", 1, 5)
        first.step(torch.zeros(1, 4, 8, 8), first.timesteps[0], torch.zeros(1, 4, 8, 8))  # used: it has state
        second = sampling.new_schedule(model, "dpmpp_2m", "karras", 2, 5)
        assert built == []  # both copies of the one built by the run above
        assert first.step_index == 1 and second.step_index is None
        assert torch.equal(second.sigmas, first.sigmas)
        sampling.new_schedule(model, "dpmpp_2m", "karras", 1, 6)  # other steps: built anew
        assert len(built) == 1
    finally:
        sampling.make_scheduler = original
