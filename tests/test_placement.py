"""Cache-affinity placement (graph.placement), without Ray: which worker runs which job."""
from __future__ import annotations

from latentgraph.graph.placement import NodeCosts, Work, WorkerView, affinity, assign


def txt2img_work(prompt: str, seed: int, ckpt: str = "K") -> Work:
    """The keys of a txt2img job: the checkpoint and negative prompt shared, the prompt per `prompt`."""
    keys = {"ckpt": ckpt, "pos": f"pos-{ckpt}-{prompt}", "neg": f"neg-{ckpt}", "latent": "latent",
            "sampler": f"sampler-{ckpt}-{prompt}-{seed}", "decode": f"decode-{ckpt}-{prompt}-{seed}",
            "save": f"save-{ckpt}-{prompt}-{seed}"}
    return Work.of(keys, {n: n for n in keys}, ["ckpt"])


def sweep(prompts, seeds) -> list[tuple[str, Work]]:
    return [(f"{p}{s}", txt2img_work(p, s)) for p in prompts for s in seeds]


def placed(pending, workers, costs=None) -> dict[str, str]:
    return {p.job: p.worker.name for p in assign(pending, workers, costs or NodeCosts())}


def test_a_sweep_queued_at_once_is_split_in_slices_that_keep_a_prompt_on_one_worker():
    w1, w2 = WorkerView("w1", ready=True), WorkerView("w2", ready=True)
    # The first of each prompt starts; the others wait for the worker that encodes their prompt.
    assert placed(sweep("ab", (1, 2, 3)), [w1, w2]) == {"a1": "w1", "b1": "w2"}


def test_the_loaded_checkpoint_comes_first_then_cached_results_weighted_by_their_seconds():
    job = txt2img_work("a", 1)
    has_model = WorkerView("m", models={"K"}, ready=True)
    has_prompt = WorkerView("p", results={"pos-K-a", "neg-K", "latent"}, ready=True)
    costs = NodeCosts()
    assert affinity(has_model, job, costs) == (1, 0) and affinity(has_prompt, job, costs) == (0, 3.0)
    assert placed([("j", job)], [has_prompt, has_model]) == {"j": "m"}
    # Without the model anywhere, the one holding more seconds of the job's work wins.
    cheap = WorkerView("cheap", results={"pos-K-a"}, ready=True)
    dear = WorkerView("dear", results={"latent", "neg-K"}, ready=True)
    costs.record("pos", 0.5)
    costs.record("latent", 0.01)
    costs.record("neg", 0.2)
    assert placed([("j", job)], [dear, cheap], costs) == {"j": "cheap"}
    costs.record("neg", 2.0)  # a moving average: 0.2 + 0.3 * 1.8
    assert costs["neg"] == 0.2 + 0.3 * 1.8
    assert placed([("j", job)], [cheap, dear], costs) == {"j": "dear"}


def test_a_job_waits_for_the_busy_worker_that_holds_more_of_it_but_no_worker_idles_while_jobs_wait():
    busy = WorkerView("busy", running=txt2img_work("a", 1), ready=True)
    idle = WorkerView("idle", ready=True)
    # a2 shares the prompt with what `busy` runs, b1 only the checkpoint: the idle one takes b1.
    assert placed([("a2", txt2img_work("a", 2)), ("b1", txt2img_work("b", 1))], [busy, idle]) == {"b1": "idle"}
    # With only a2 waiting, the idle worker takes it rather than idle.
    assert placed([("a2", txt2img_work("a", 2))], [busy, idle]) == {"a2": "idle"}


def test_ties_go_to_the_worker_given_fewest_jobs_and_unready_workers_get_nothing():
    first, second = WorkerView("first", jobs=5, ready=True), WorkerView("second", jobs=1, ready=True)
    starting = WorkerView("starting", ready=False)
    assert placed([("j", txt2img_work("a", 1))], [first, starting, second]) == {"j": "second"}
    assert placed([("j", txt2img_work("a", 1))], [starting]) == {}


def test_jobs_of_another_checkpoint_go_where_that_checkpoint_is_loaded():
    k1 = WorkerView("k1", models={"K1"}, ready=True)
    k2 = WorkerView("k2", models={"K2"}, ready=True)
    pending = [("x", txt2img_work("a", 1, "K2")), ("y", txt2img_work("a", 1, "K1"))]
    assert placed(pending, [k1, k2]) == {"x": "k2", "y": "k1"}
