"""Canny: edges of a picture as a control image (white on black, three equal channels), in a graph
that feeds a ControlNet."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import read_png, txt2img
from PIL import Image
from test_controlnet import cn_settings, with_control  # noqa: F401

from latentgraph.graph.errors import WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.nodes.preprocessors import canny


def square(level: float) -> torch.Tensor:
    picture = torch.zeros(1, 3, 64, 64)
    picture[..., 16:48, 16:48] = level
    return picture


def test_canny_marks_the_outline_and_nothing_else():
    (edges,) = canny(None, square(1.0), 0.4, 0.8)
    assert edges.shape == (1, 3, 64, 64) and set(edges.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(edges[:, 0], edges[:, 1]) and torch.equal(edges[:, 0], edges[:, 2])
    found = edges[0, 0].bool()
    near_border = torch.zeros(64, 64, dtype=torch.bool)
    near_border[13:51, 13:51] = True
    near_border[19:45, 19:45] = False
    assert not found[~near_border].any()
    for side in (found[13:19, 20:44].any(0), found[45:51, 20:44].any(0), found[20:44, 13:19].any(1),
                 found[20:44, 45:51].any(1)):
        assert side.float().mean() > 0.9  # each side of the square is traced along its length


def test_thresholds_decide_which_edges_are_kept():
    faint = square(0.3)
    assert canny(None, faint, 0.1, 0.2)[0].sum() > 0
    assert canny(None, faint, 0.8, 0.9)[0].sum() == 0


def test_canny_feeds_a_controlnet_and_refuses_crossed_thresholds(cn_settings):  # noqa: F811
    executor = Executor(cn_settings)
    Image.fromarray((square(1.0)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
        cn_settings.input / "square.png")
    wf = with_control(txt2img(seed=3, steps=4), hint="square.png")
    nodes = wf["nodes"]
    nodes["edges"] = {"type": "Canny", "inputs": {"image": {"node": "hint1", "output": "IMAGE"},
                                                  "low_threshold": 0.4, "high_threshold": 0.8}}
    nodes["apply1"]["inputs"]["image"] = {"node": "edges", "output": "IMAGE"}
    from_edges = read_png(executor.run(wf).images[0]["path"]).astype(int)
    from_picture = read_png(executor.run(with_control(txt2img(seed=3, steps=4), hint="square.png")).images[0]["path"])
    assert np.abs(from_edges - from_picture).max() > 0  # the ControlNet was given the edges, not the picture
    nodes["edges"]["inputs"].update(low_threshold=0.7, high_threshold=0.5)
    with pytest.raises(WorkflowInvalid) as crossed:
        executor.run(wf)
    (error,) = crossed.value.errors
    assert (error.node_id, error.input) == ("edges", "high_threshold")
