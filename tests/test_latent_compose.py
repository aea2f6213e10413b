"""LatentComposite and LatentBlend: the arithmetic (feathered inner edges, empty canvases, batches), the
refusals, and both in a graph on the shipped model."""
from __future__ import annotations

import pytest
import torch
from helpers import read_png, shipped_model_executor

from latentgraph.graph.errors import InputError
from latentgraph.nodes.latent_compose import latent_blend, latent_composite
from latentgraph.nodes.values import Latent


def latent(tensor, scale=8) -> Latent:
    return Latent(samples=tensor, width=tensor.shape[-1] * scale, height=tensor.shape[-2] * scale,
                  batch_size=tensor.shape[0])


def test_composite_pastes_with_feathered_inner_edges_only():
    to, source = torch.zeros(1, 4, 16, 16), torch.ones(1, 4, 8, 8)
    (out,) = latent_composite(None, latent(to), latent(source), x=32, y=0, feather=16)  # cells: x 4, feather 2
    out = out.samples[0, 0]
    # rows: top at the border (no fade), bottom inside (fades); columns: both sides inside
    expected_rows = torch.tensor([1, 1, 1, 1, 1, 1, 1, 0.5])
    expected_cols = torch.tensor([0.5, 1, 1, 1, 1, 1, 1, 0.5])
    assert torch.equal(out[:8, 4:12], expected_rows[:, None] * expected_cols[None, :])
    assert not out[8:].any() and not out[:, :4].any() and not out[:, 12:].any()
    # no feather: the source as it is; a source running over the edge is cut there
    (plain,) = latent_composite(None, latent(to), latent(source * 3), x=96, y=104, feather=0)
    assert torch.equal(plain.samples[0, :, 13:, 12:], torch.full((4, 3, 4), 3.0))
    assert plain.samples[0, :, :13].sum() == 0 and plain.samples[0, :, :, :12].sum() == 0


def test_composite_on_an_empty_canvas_and_batches():
    source = torch.randn(1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    canvas = Latent(samples=None, width=128, height=64, batch_size=2)  # EmptyLatentImage's
    (out,) = latent_composite(None, canvas, latent(source), x=64, y=0, feather=0)
    assert out.samples.shape == (2, 4, 8, 16) and out.batch_size == 2
    assert torch.equal(out.samples[:, :, :4, 8:12], source.expand(2, -1, -1, -1))
    assert out.samples[:, :, :, :8].abs().sum() == 0
    with pytest.raises(InputError) as both_empty:
        latent_composite(None, canvas, Latent(samples=None, width=64, height=64, batch_size=1), 0, 0, 0)
    assert both_empty.value.input_name == "samples_to"
    with pytest.raises(InputError) as batches:
        latent_composite(None, latent(torch.zeros(3, 4, 8, 8)), latent(torch.zeros(2, 4, 4, 4)), 0, 0, 0)
    assert batches.value.input_name == "samples_from"
    with pytest.raises(InputError) as channels:
        latent_composite(None, latent(torch.zeros(1, 4, 8, 8)), latent(torch.zeros(1, 16, 4, 4)), 0, 0, 0)
    assert channels.value.input_name == "samples_from"


def test_blend_mixes_and_fits_the_second_to_the_first():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 4, 8, 8, generator=gen), torch.randn(1, 4, 8, 8, generator=gen)
    assert torch.equal(latent_blend(None, latent(a), latent(b), 1.0, "normal")[0].samples, a)
    assert torch.equal(latent_blend(None, latent(a), latent(b), 0.0, "normal")[0].samples, b)
    torch.testing.assert_close(latent_blend(None, latent(a), latent(b), 0.25, "normal")[0].samples,
                               0.25 * a + 0.75 * b)
    wide = torch.randn(1, 4, 8, 16, generator=gen)  # centre-cropped to 8 x 8, then already the right size
    torch.testing.assert_close(latent_blend(None, latent(a), latent(wide), 0.5, "normal")[0].samples,
                               0.5 * a + 0.5 * wide[..., 4:12])


def test_composite_and_blend_in_a_graph_on_the_shipped_model(tmp_path):
    from latentgraph.training.judge import read

    def ref(node, output):
        return {"node": node, "output": output}
    nodes = {
        "ckpt": {"type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-shapes"}},
        "pos": {"type": "CLIPTextEncode", "inputs": {"text": "a large red square on a yellow background",
                                                     "clip": ref("ckpt", "CLIP")}},
        "neg": {"type": "CLIPTextEncode", "inputs": {"text": "", "clip": ref("ckpt", "CLIP")}},
        "small": {"type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "draw": {"type": "KSampler", "inputs": {
            "model": ref("ckpt", "MODEL"), "positive": ref("pos", "CONDITIONING"),
            "negative": ref("neg", "CONDITIONING"), "latent_image": ref("small", "LATENT"), "seed": 2, "steps": 20,
            "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "canvas": {"type": "EmptyLatentImage", "inputs": {"width": 128, "height": 64, "batch_size": 1}},
        "composite": {"type": "LatentComposite", "inputs": {"samples_to": ref("canvas", "LATENT"),
                                                            "samples_from": ref("draw", "LATENT"),
                                                            "x": 64, "y": 0, "feather": 0}},
        "blend": {"type": "LatentBlend", "inputs": {"samples1": ref("draw", "LATENT"),
                                                    "samples2": ref("draw", "LATENT"),
                                                    "blend_factor": 0.3, "blend_mode": "normal"}},
    }
    for name in ("drawn", "composite", "blend"):  # each latent decoded and saved as <name>_00001_.png
        source = "draw" if name == "drawn" else name
        nodes[f"decode_{name}"] = {"type": "VAEDecode", "inputs": {"samples": ref(source, "LATENT"),
                                                                   "vae": ref("ckpt", "VAE")}}
        nodes[f"save_{name}"] = {"type": "SaveImage", "inputs": {"images": ref(f"decode_{name}", "IMAGE"),
                                                                 "filename_prefix": name}}
    result = shipped_model_executor(tmp_path).run({"format": "latentgraph", "version": 2, "nodes": nodes})
    images = {image["path"].split("/")[-1].split("_")[0]: read_png(image["path"]) for image in result.images}
    drawn, composite = images["drawn"], images["composite"]
    assert read(drawn)["shape"] == "square" and read(drawn)["colour"] == "red"
    assert composite.shape == (64, 128, 3)
    # the drawn picture at the right, decoded beside a blank latent (the decoder's group norms see both
    # halves, so its pixels shift a little: the judge reads what it shows)
    right = read(composite[:, 64:])
    assert (right["colour"], right["background"]) == ("red", "yellow")
    assert (images["blend"] == drawn).mean() > 0.99  # a latent blended with itself is itself (up to rounding)
