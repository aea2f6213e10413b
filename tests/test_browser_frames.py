"""Frame times of the editor with large graphs (issue 25), measured in Debian's Chromium against a
real `latentgraph serve`: pan and zoom 300 nodes (50 chains of 6 image nodes) and 1,000 nodes, and
pan while a run sends progress events.

Targets (issue 25): 300 nodes median <= 17 ms and p95 <= 25 ms per frame; 1,000 nodes p95 <= 50 ms;
during a run no frame over 50 ms. CI machines are shared, so the asserts allow twice the targets plus
what the machine loses at that moment on the 7-node default workflow (editor_frames.allowed); the
figures are printed, and `python bench/bench_editor_frames.py` records them in docs/benchmarks.md.
"""
from __future__ import annotations

import json

import pytest
from browser_helpers import BROWSER_MARKS, DEFAULT_WORKFLOW, browser, editor_page, server, server_dirs  # noqa: F401
from editor_frames import COUNT_EVENTS_JS, TARGETS, allowed, baseline, measure_view, merged_stats, run_with_progress

pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def frames_page(browser, server):
    """One page for the module (opening 1,000 nodes is the slow part of each test)."""
    with editor_page(browser, server, 1600, 1000, init_script=COUNT_EVENTS_JS) as page:
        yield page


def txt2img() -> dict:
    return json.loads(DEFAULT_WORKFLOW.read_text())


@pytest.fixture
def machine(frames_page):
    """Frame times of the 7-node default workflow, measured just before each test."""
    stats = baseline(frames_page, txt2img(), seconds=1)
    report("baseline, 7 nodes", stats)
    return stats


def report(name: str, stats: dict) -> None:
    print(f"\n{name}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items()))


def test_300_nodes_pan_and_zoom(frames_page, machine):
    runs = [measure_view(frames_page, 300, view, seconds=1.5) for view in ("fit", "close")]
    stats = merged_stats(runs)
    report("300 nodes, pan + zoom (fit and close views)", stats)
    assert stats["drawn_fit"] == 300  # the whole graph is on the page, not a sample of it
    assert stats["median"] <= allowed(TARGETS["300_median"], machine["median"]), stats
    assert stats["p95"] <= allowed(TARGETS["300_p95"], machine["p95"]), stats


def test_1000_nodes_pan_and_zoom(frames_page, machine):
    stats = merged_stats([measure_view(frames_page, 1000, "fit", seconds=1.5)])
    report("1000 nodes, pan + zoom (fit view)", stats)
    assert stats["drawn_fit"] >= 1000
    assert stats["p95"] <= allowed(TARGETS["1000_p95"], machine["p95"]), stats


def test_progress_events_during_a_run_cost_no_long_frame(frames_page, machine):
    stats = run_with_progress(frames_page, txt2img(), seconds=3)
    report("300 nodes panning while a run sends progress events", stats)
    assert stats["events"] >= 10, "the run sent too few events to measure"
    assert stats["max"] <= allowed(TARGETS["run_max"], machine["max"]), stats
