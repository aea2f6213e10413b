"""Node packs (entry-point group `latentgraph.nodes`): the example pack installed with pip into a
fresh virtual environment appears in the CLI, the catalog and runs in a workflow; broken packs are
reported and the server still starts; a pack's version enters its nodes' cache keys."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from helpers import read_png
from PIL import Image

from latentgraph.nodes import registry
from latentgraph.nodes.spec import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "examples" / "node-pack"


def site_dirs() -> list[str]:
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]


def make_venv(folder: Path) -> Path:
    """A fresh virtual environment that sees this interpreter's packages (latentgraph, torch...)
    through a .pth file, so that installing into it needs no network. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir, not a plain path: it also reads the .pth files there (editable installs).
    lines = "; ".join(f"site.addsitedir({d!r})" for d in site_dirs())
    (Path(purelib) / "zz_parent.pth").write_text(f"import site; {lines}\n")
    return python


def latentgraph(python: Path, *args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "latentgraph", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def test_the_example_pack_installs_with_pip_appears_and_runs(tmp_path):
    python = make_venv(tmp_path / "venv")
    source = shutil.copytree(PACK, tmp_path / "node-pack")  # pip builds in the source folder
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    listed = latentgraph(python, "nodes", "--packs", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "latentgraph-example-nodes 0.1.0 (example = latentgraph_example_nodes.nodes): ColorTint, ImagePosterize"]
    catalog = json.loads(latentgraph(python, "nodes", "--json", cwd=tmp_path).stdout)
    assert catalog["nodes"]["ColorTint"]["pack"] == "latentgraph-example-nodes"
    assert [i["name"] for i in catalog["nodes"]["ColorTint"]["inputs"]] == ["image", "color", "strength"]
    assert catalog["packs"][0]["nodes"] == ["ColorTint", "ImagePosterize"] and catalog["failed_packs"] == []
    assert "ColorTint" not in registry()  # this interpreter has no pack installed

    # A workflow using the pack's node, through `latentgraph run`.
    (tmp_path / "input").mkdir()
    Image.fromarray(np.array([[[0, 64, 200], [255, 128, 3]]], dtype=np.uint8)).save(tmp_path / "input" / "in.png")
    workflow = {"format": "latentgraph", "version": 2, "nodes": {
        "load": {"type": "LoadImage", "inputs": {"image": "in.png"}},
        "poster": {"type": "ImagePosterize", "inputs": {"image": {"node": "load", "output": "IMAGE"}, "levels": 2}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "poster", "output": "IMAGE"},
                                                 "filename_prefix": "pack"}}}}
    (tmp_path / "wf.json").write_text(json.dumps(workflow))
    ran = latentgraph(python, "run", "wf.json", "--input", "input", "--out", "out", "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert read_png(tmp_path / "out" / "pack_00001_.png").tolist() == [[[0, 0, 255], [255, 255, 0]]]
    invalid = dict(workflow, nodes=dict(workflow["nodes"], poster={**workflow["nodes"]["poster"],
                                                                     "inputs": {"image": {"node": "load",
                                                                                          "output": "IMAGE"},
                                                                                "levels": 1}}))
    (tmp_path / "bad.json").write_text(json.dumps(invalid))
    refused = latentgraph(python, "validate", "bad.json", cwd=tmp_path)
    assert refused.returncode == 3 and "ImagePosterize 'poster', input 'levels'" in refused.stderr

    # The pack's own tests, where it is installed.
    own = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=source, capture_output=True, text=True, timeout=300)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "4 passed" in own.stdout


def fake_pack(site: Path, name: str, module: str, code: str, version: str = "1.0") -> None:
    """What pip leaves for an installed pack: its module and a dist-info with the entry point."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[latentgraph.nodes]\n{name} = {module}\n")


REPLACER = '''
from latentgraph.nodes.spec import IMAGE, Input, Output, node

@node("ReplacerExtra", category="test", description="declared before the refusal",
      inputs=[Input("image", IMAGE)], outputs=[Output("IMAGE", IMAGE)])
def extra(ctx, image):
    return (image,)

@node("KSampler", category="test", description="tries to replace a built-in",
      inputs=[Input("image", IMAGE)], outputs=[Output("IMAGE", IMAGE)])
def ksampler(ctx, image):
    return (image,)
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_broken_packs_are_reported_and_the_server_still_starts(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    fake_pack(site, "broken-pack", "broken_pack", "raise RuntimeError('boom at import')\n")
    fake_pack(site, "replacer-pack", "replacer_pack", REPLACER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))

    listed = latentgraph(Path(sys.executable), "nodes", "--packs", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "broken-pack 1.0 (broken-pack = broken_pack): left out: RuntimeError: boom at import",
        "replacer-pack 1.0 (replacer-pack = replacer_pack): left out: ValueError: node pack replacer-pack may not "
        "replace the node type 'KSampler' (built in)"]
    assert "node pack broken-pack 1.0 (broken-pack = broken_pack) is left out: RuntimeError" in listed.stderr
    assert "node pack replacer-pack" in listed.stderr

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "latentgraph", "serve", "--port", str(port), "--output",
                               str(tmp_path / "output")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/nodes", timeout=5) as answer:
                    catalog = json.load(answer)
                break
            except OSError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info/ReplacerExtra", timeout=5) as answer:
            assert json.load(answer) == {}  # ComfyUI clients do not see the refused pack's nodes either
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/object_info/KSampler", timeout=5) as answer:
            assert json.load(answer)["KSampler"]["python_module"] == "nodes"
    finally:
        server.terminate()
        server.wait(timeout=30)
    failed = {pack["name"]: pack["error"] for pack in catalog["failed_packs"]}
    assert failed == {"broken-pack": "RuntimeError: boom at import",
                      "replacer-pack": "ValueError: node pack replacer-pack may not replace the node type "
                                       "'KSampler' (built in)"}
    assert catalog["packs"] == []
    assert "ReplacerExtra" not in catalog["nodes"]  # a refused pack is left out whole
    assert catalog["nodes"]["KSampler"]["category"] == "sampling" and "pack" not in catalog["nodes"]["KSampler"]


def test_a_packs_version_enters_its_nodes_cache_keys(tmp_path, monkeypatch):
    from latentgraph import Executor, Settings

    executor = Executor(Settings(models=tmp_path, input=tmp_path, output=tmp_path, temp=tmp_path, device="cpu"))
    workflow = {"format": "latentgraph", "version": 2, "nodes": {
        "empty": {"type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "invert": {"type": "ImageInvert", "inputs": {"image": {"node": "empty", "output": "IMAGE"}}},
        "save": {"type": "SaveImage", "inputs": {"images": {"node": "invert", "output": "IMAGE"}}}}}
    builtin = executor.keys(workflow)
    keys = {}
    for version in ("1.0", "1.1"):
        spec = dataclasses.replace(REGISTRY["ImageInvert"], pack="some-pack", pack_version=version)
        monkeypatch.setitem(REGISTRY, "ImageInvert", spec)
        keys[version] = executor.keys(workflow)
    assert len({builtin["invert"], keys["1.0"]["invert"], keys["1.1"]["invert"]}) == 3
    assert builtin["empty"] == keys["1.0"]["empty"] == keys["1.1"]["empty"]  # upstream of the pack node: unchanged
