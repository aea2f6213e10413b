"""The light commands start without the heavy libraries: `latentgraph nodes`, `validate`, `import` and
`--help` never import torch, diffusers or transformers (issue 24). Each command runs in a fresh
interpreter, which then reports the modules it holds; the assertions are on modules, not on time."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers", "transformers", "peft", "kornia", "safetensors")

PROBE = """
import contextlib, io, json, sys
from latentgraph.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
    try:
        code = main(json.loads(sys.argv[1]))
    except SystemExit as exc:
        code = exc.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"code": code, "heavy": heavy, "stderr": err.getvalue()}))
"""


def imported_by(argv: list[str], cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["nodes"],
    ["nodes", "--json"],
    ["nodes", "--markdown"],
    ["validate", str(ROOT / "examples" / "txt2img.json"), str(ROOT / "examples" / "inpaint.json")],
    ["validate", str(ROOT / "tests" / "data" / "comfyui" / "refiner_ui.json")],
    ["import", str(ROOT / "tests" / "data" / "comfyui" / "txt2img_ui.json")],
    ["validate", str(ROOT / "examples" / "subgraph.json"), "--set", "upscale/2.sigma=0.8"],
    ["import", str(ROOT / "tests" / "data" / "comfyui" / "subgraph_ui.json")],
], ids=lambda argv: " ".join(a if "/" not in a else Path(a).name for a in argv))
def test_light_commands_do_not_import_torch_diffusers_or_transformers(argv, tmp_path):
    found = imported_by(argv, tmp_path)
    assert found["code"] in (0, 3), found["stderr"]  # 3: the refiner workflow names checkpoints not here
    assert found["heavy"] == [], f"latentgraph {' '.join(argv)} imported {found['heavy']}"


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check above can fail: `run` does import torch."""
    found = imported_by(["run", str(ROOT / "examples" / "missing.json")], tmp_path)
    assert "torch" in found["heavy"]


def test_validation_knows_which_schedulers_lack_sigma_grids():
    """nodes/schedulers.py keeps, for a diffusers-free validation, the schedule flags each scheduler
    class lacks: they must be diffusers' own."""
    import inspect

    import diffusers

    from latentgraph.nodes.schedulers import MISSING_FLAGS, SAMPLERS, SCHEDULES

    flags = {flag for settings in SCHEDULES.values() for flag in settings}
    for cls_name, _ in SAMPLERS.values():
        accepted = inspect.signature(getattr(diffusers, cls_name).__init__).parameters
        assert set(MISSING_FLAGS.get(cls_name, ())) == {f for f in flags if f not in accepted}, cls_name
