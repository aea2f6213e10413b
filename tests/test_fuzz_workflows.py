"""Property-based fuzzing (Hypothesis) of workflow documents through every way in: `load_workflow`
and `validate`, the CLI, and the HTTP API of a real server on loopback.

Whatever the document (tests/fuzzing.py makes them from real workflows in our formats
v1 and v2 and ComfyUI's API and UI formats), the engine raises only WorkflowFormatError (validation
returns its errors), the CLI exits 0 or 3 with a message and no traceback, and the server answers
200 or 400 with JSON, never 500. CI runs a modest number of examples; LATENTGRAPH_FUZZ_EXAMPLES=N
runs more (the long run is bench/fuzz_workflows.py, recorded in docs/robustness.md).
"""
from __future__ import annotations

import os

import pytest
from fuzzing import check_cli, check_http, documents, dumps, engine_outcome, loopback_server, outcome_of
from hypothesis import HealthCheck, event, given, settings

from latentgraph.graph.settings import Settings

EXAMPLES = int(os.environ.get("LATENTGRAPH_FUZZ_EXAMPLES", "0")) or None
FUZZ = dict(deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Empty folders: checkpoints resolve to the shipped tiny-shapes, which the examples name."""
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("models", "input", "output", "temp"):
        (root / name).mkdir()
    return root


@pytest.fixture(scope="module")
def plain_settings(folders):
    return Settings(models=folders / "models", input=folders / "input", output=folders / "output",
                    temp=folders / "temp", device="cpu")


@settings(max_examples=EXAMPLES or 250, **FUZZ)
@given(doc=documents())
def test_engine_raises_only_documented_errors(doc, plain_settings):
    from_text = engine_outcome(dumps(doc).encode(), plain_settings)  # bytes: a str not starting with { is a path
    if isinstance(doc, (dict, list)):  # a str given to load_workflow is a path
        # The same document given as a dict (checked in place, not copied) ends the same way.
        assert engine_outcome(doc, plain_settings) == from_text
    event(f"outcome: {from_text}")  # --hypothesis-show-statistics: how many reach validation


@settings(max_examples=EXAMPLES or 40, **FUZZ)
@given(doc=documents())
def test_cli_exits_0_or_3_with_a_message(doc, folders, plain_settings):
    check_cli(doc, outcome_of(doc, plain_settings), folders)


@pytest.fixture(scope="module")
def server(folders, plain_settings):
    with loopback_server(plain_settings, folders) as port:
        yield port


@settings(max_examples=EXAMPLES or 40, **FUZZ)
@given(doc=documents())
def test_http_answers_200_or_400_never_500(doc, server, plain_settings):
    check_http(doc, outcome_of(doc, plain_settings), server)
