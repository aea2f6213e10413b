"""The position measurements of docs/tiny-model.md (latentgraph.training.position_probe)."""
import math

import pytest
import torch

from latentgraph.training import position_probe as probe
from latentgraph.training.train_tiny import DEFAULT_OUT, load_pipeline


@pytest.fixture()
def pipe():
    torch.set_num_threads(2)
    return load_pipeline(DEFAULT_OUT)


def test_position_effect_of_the_shipped_model_is_what_the_docs_state(pipe):
    left, _, green = probe.PAIR
    assert probe.position_effect(pipe, captions=(left, left, green)) == 0  # same words: nothing moves
    assert probe.position_effect(pipe, captions=(left, green, green)) == pytest.approx(1)
    # The shipped model follows position words: "left" -> "right" moves its prediction of the clean
    # latent from pure noise about as far as "red" -> "green" (docs/tiny-model.md: 1.2). The model
    # before it, which ignored them, measured 0.01.
    assert probe.position_effect(pipe, t=999) > 0.5


def test_direct_control_experiment_trains_a_fresh_unet_and_reports_its_effect(pipe):
    old = pipe.unet
    rows = probe.direct(pipe, steps=2, batch=4, every=1, n_pictures=8)
    assert [r[0] for r in rows] == [1, 2]
    assert all(math.isfinite(loss) and math.isfinite(moved) and moved >= 0 for _, loss, moved in rows)
    assert pipe.unet is not old
    assert tuple(pipe.unet.config.block_out_channels) == tuple(old.config.block_out_channels)
