"""What a run prints: no library noise users cannot act on (transformers' loading bars, torchsde's
rounding warnings) through the Python API, and in a pipe one line per node with its time instead
of progress bars."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

SCRIPT = """
import latentgraph
wf = latentgraph.Workflow()
ckpt = wf.add("CheckpointLoaderSimple", ckpt_name="tiny-shapes")
pos = wf.add("CLIPTextEncode", text="a red circle", clip=ckpt.CLIP)
neg = wf.add("CLIPTextEncode", text="", clip=ckpt.CLIP)
latent = wf.add("EmptyLatentImage", width=64, height=64, batch_size=1)
sampler = wf.add("KSampler", model=ckpt.MODEL, positive=pos.CONDITIONING, negative=neg.CONDITIONING,
                 latent_image=latent.LATENT, seed=1, steps=3, cfg=6.0, sampler_name="dpmpp_sde",
                 scheduler="karras", denoise=1.0)
decode = wf.add("VAEDecode", samples=sampler.LATENT, vae=ckpt.VAE)
wf.add("SaveImage", images=decode.IMAGE, filename_prefix="quiet")
print(len(latentgraph.run(wf, output="out", models="models", device="cpu").images))
"""


def test_the_python_api_shows_no_loading_bars_or_torchsde_warnings(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    # Before: "Loading weights: 100%|...| 36/36" from transformers and torchsde's "Should have ta>=t0 ...".
    assert done.stderr == ""


def test_in_a_pipe_each_node_gets_one_line_with_its_time(tmp_path):
    (tmp_path / "input").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "input" / "black.png")
    workflow = {"format": "latentgraph", "version": 2, "nodes": {
        "load": {"type": "LoadImage", "inputs": {"image": "black.png"}},
        "invert": {"type": "ImageInvert", "inputs": {"image": {"node": "load", "output": "IMAGE"}}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "invert", "output": "IMAGE"}}}}}
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    run = [sys.executable, "-m", "latentgraph", "run", "wf.json", "wf.json", "--input", "input", "--out", "out"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    first = [line.split(":")[0].strip() for line in lines[:3]]
    assert first == ["load (LoadImage)", "invert (ImageInvert)", "save (SaveImage)"]
    assert all(line.endswith("s") and float(line.rsplit(" ", 1)[1][:-1]) >= 0 for line in lines[:3])
    assert lines[3:] == ["  load: cached", "  invert: cached", "  save: cached"]  # the second, identical run
    assert "it/s" not in done.stderr and "\r" not in done.stderr  # no progress bar
    quiet = subprocess.run([*run, "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0 and quiet.stderr == ""
