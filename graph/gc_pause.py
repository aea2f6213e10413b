"""Pausing Python's cyclic garbage collector while a workflow is planned and, for large graphs, run.

The collector runs whenever enough new objects have been allocated, and each full pass scans every
tracked object. Planning (and running the bookkeeping of) tens of thousands of nodes allocates
objects by the million that stay alive until the run ends and hold no reference cycles, so the
passes scan them again and again and find nothing: bench/bench_validation.py measures the cost.
Reference counting frees everything as usual while the collector is paused.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager, nullcontext

PAUSE_RUNS_FROM = 1000  # nodes; smaller runs make too little bookkeeping for the collector to matter

_lock = threading.Lock()
_depth = 0  # pauses open, in any thread
_was_enabled = False


@contextmanager
def gc_paused():
    """Disable the collector for the block. Nested and concurrent blocks are fine: it is enabled
    again when the last one ends, if it was enabled when the first began."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def paused_for_run(node_count: int):
    """The pause for a run of `node_count` nodes: only large runs are paused."""
    return gc_paused() if node_count >= PAUSE_RUNS_FROM else nullcontext()


def collect_young() -> None:
    """During a pause, free the reference cycles the last node made (a young-generation pass
    scans only what was allocated since the previous one, so this stays cheap)."""
    if _depth and _was_enabled:
        gc.collect(0)
