"""The durable job queue (issue 20) with a stand-in runner: pending jobs are in SQLite before
submit returns and come back in order after a stop; the job a stop interrupted is re-queued once
only when asked; client ids are idempotent; hooks see each job's end once."""
from __future__ import annotations

import threading

import pytest

from latentgraph.graph.errors import Interrupted
from latentgraph.graph.executor import RunResult
from latentgraph.server.history import History
from latentgraph.server.jobs import CRASHED, SHUT_DOWN, JobQueue


class GateRunner:
    """Runs a job at once, except those named in `hold`, which wait for an interrupt."""

    slots = 1

    def __init__(self, hold=()):
        self.hold, self.runs = set(hold), []
        self.started, self.stop = threading.Event(), threading.Event()

    def run(self, job, on_event):
        self.runs.append(job.job_id)
        on_event({"type": "executing", "node_id": "n", "node_type": "Test"})
        if job.job_id in self.hold:
            self.started.set()
            self.stop.wait(30)
            raise Interrupted()
        return RunResult(workflow=job.workflow)

    def interrupt(self, job):
        self.stop.set()

    def close(self):
        pass


def queue(path, runner, **options):
    events, ended = [], []
    jobs = JobQueue(runner, History(path), events.append, **options)
    jobs.on_finished(ended.append)
    return jobs, events, ended


def wait_until(predicate, timeout=30):
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("timed out")


def test_pending_jobs_survive_a_stop_and_the_interrupted_one_is_resumed_once_when_asked(tmp_path):
    path = tmp_path / "history.sqlite3"
    runner = GateRunner(hold={"a"})
    first, events, ended = queue(path, runner)
    for name in ("a", "b", "c"):
        job, _, new = first.submit({"nodes": {}, "n": name}, "tab", job_id=name)
        assert new and History(path).get(name)["status"] == "pending"  # durable before submit returns
    first.start()
    assert runner.started.wait(30)
    shutdown = first.stop()

    assert shutdown == {"type": "shutdown", "job_id": None, "interrupted": ["a"], "pending": ["b", "c"]}
    a = History(path).get("a")
    assert a["status"] == "interrupted" and a["resumable"] and a["errors"][0]["message"] == SHUT_DOWN
    finished = [e for e in events if e["type"] == "finished"]
    assert finished == [{"type": "finished", "job_id": "a", "status": "interrupted", "errors": a["errors"]}]
    assert events[-1] == shutdown and ended == []  # a may come back: its end is not final yet
    assert [History(path).get(n)["status"] for n in "bc"] == ["pending", "pending"]

    # Restarted with resume: a first (its place), then b, c; none queued again, none run twice.
    again = GateRunner()
    second, _, ended = queue(path, again, resume_interrupted=True)
    assert [job.job_id for job in second.snapshot()[1]] == ["a", "b", "c"]
    second.start()
    wait_until(lambda: len(ended) == 3)
    second.stop()
    assert again.runs == ["a", "b", "c"] and [job.job_id for job in ended] == ["a", "b", "c"]
    docs = {n: History(path).get(n) for n in "abc"}
    assert [docs[n]["status"] for n in "abc"] == ["success"] * 3
    assert (docs["a"]["attempts"], docs["a"]["resumed"], docs["b"]["attempts"]) == (2, True, 1)
    assert docs["a"]["errors"] == []


def test_a_job_interrupted_again_after_its_resume_is_not_resumed_twice(tmp_path):
    path = tmp_path / "history.sqlite3"
    history = History(path)
    base = {"created": 1.0, "workflow": {"nodes": {}}, "errors": []}
    history.save({**base, "job_id": "resumed-once", "status": "running", "resumed": True, "attempts": 2})
    history.save({**base, "job_id": "crashed", "status": "running", "attempts": 1})
    history.save({**base, "job_id": "waiting", "status": "pending"})
    history.close()

    jobs, _, ended = queue(path, GateRunner(), resume_interrupted=True)
    assert [job.job_id for job in jobs.snapshot()[1]] == ["crashed", "waiting"]  # queue order kept
    once = History(path).get("resumed-once")
    assert once["status"] == "interrupted" and once["errors"][0]["message"] == CRASHED and not once["resumable"]
    jobs.start()  # the end decided at restore goes through the hooks (webhooks, sweeps) now
    wait_until(lambda: len(ended) == 3)
    jobs.stop()
    assert sorted(job.job_id for job in ended) == ["crashed", "resumed-once", "waiting"]

    # Without the flag, a crash's interrupted job stays interrupted.
    History(path).save({**base, "job_id": "late", "status": "running", "attempts": 1})
    plain, _, _ = queue(path, GateRunner())
    assert plain.snapshot()[1] == [] and History(path).get("late")["status"] == "interrupted"


def test_client_job_ids_are_idempotent_and_cancellations_carry_their_reason(tmp_path):
    path = tmp_path / "history.sqlite3"
    jobs, events, ended = queue(path, GateRunner())
    job, position, new = jobs.submit({"nodes": {}}, job_id="mine")
    again, position_again, new_again = jobs.submit({"nodes": {"other": {}}}, job_id="mine")
    assert (new, new_again, again.job_id, position, position_again) == (True, False, "mine", 0, 0)
    assert again.workflow == {"nodes": {}} and [e["type"] for e in events].count("queued") == 1
    assert jobs.cancel("mine") is None
    cancelled = History(path).get("mine")
    assert cancelled["status"] == "cancelled" and cancelled["errors"][0]["kind"] == "cancelled"
    wait_until(lambda: len(ended) == 1)
    # Ended, it is still the answer for its id.
    assert jobs.submit({"nodes": {}}, job_id="mine")[1:] == (None, False)
    with pytest.raises(ValueError):
        jobs.submit(None, job_id="unknown")
