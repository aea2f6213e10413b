"""Shared fixtures: tiny random-weight checkpoints in diffusers format, built offline once per run."""
from __future__ import annotations

import pytest
import torch

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.tiny_random import save_sd15

# Bit-exact comparisons on the CPU need a fixed thread count.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_sd15(root / "checkpoints" / "tiny-sd15", seed=0)
    return root


@pytest.fixture
def settings(models_dir, tmp_path):
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir()
    return Settings(models=models_dir, input=tmp_path / "input", output=tmp_path / "output", temp=tmp_path / "temp",
                    device="cpu")


@pytest.fixture
def executor(settings):
    return Executor(settings)
