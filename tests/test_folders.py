"""The models folder as ComfyUI lays it out: the checkpoint list holds checkpoints only."""
from __future__ import annotations

from latentgraph.graph.settings import Settings
from latentgraph.nodes import folders


def test_other_model_kinds_are_not_listed_as_checkpoints(tmp_path):
    models = tmp_path / "models"
    files = ["checkpoints/a.safetensors", "top.safetensors", "mine/b.safetensors", "loras/l.safetensors",
             "vae/v.safetensors", "embeddings/e.safetensors", "controlnet/c.safetensors",
             "upscale_models/u.safetensors"]
    for name in files:
        (models / name).parent.mkdir(parents=True, exist_ok=True)
        (models / name).write_bytes(b"not read")
    settings = Settings(models=models, input=tmp_path, output=tmp_path, temp=tmp_path)
    assert sorted(folders.list_checkpoints(settings)) == ["a.safetensors", "mine/b.safetensors", "tiny-shapes",
                                                          "top.safetensors"]
    assert "c.safetensors" in folders.list_controlnets(settings)
