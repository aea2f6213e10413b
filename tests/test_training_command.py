"""The training command (issue 4) end to end at toy size: it runs in parts (stop, then --resume),
logs losses and judge figures, and exports models that our own loader and nodes run: the SD1.5
type, and the SDXL base + refiner pair of --xl; fine-tuning stages on a saved model (decoder, fade)."""
from __future__ import annotations

import json
import random

import pytest
import torch
from helpers import read_png, txt2img
from safetensors.torch import load_file
from sdxl_helpers import base_and_refiner

from latentgraph.graph.executor import Executor
from latentgraph.graph.settings import Settings
from latentgraph.training import shapes, train_tiny

TOY = ["--vae-steps", "3", "--position-steps", "3", "--unet-steps", "3", "--refiner-steps", "2", "--cache", "64",
       "--unet-batch", "4", "--vae-batch", "4", "--ckpt-every", "2", "--eval-every", "1000"]


def settings_for(tmp_path, models) -> Settings:
    for name in ("input", "output", "temp"):
        (tmp_path / name).mkdir(exist_ok=True)
    return Settings(models=models, input=tmp_path / "input", output=tmp_path / "output", temp=tmp_path / "temp",
                    device="cpu")


def test_sd15_type_trains_in_two_parts_and_runs_in_the_graph(tmp_path):
    run, models = tmp_path / "run", tmp_path / "models"
    out = models / "checkpoints" / "toy-shapes"
    assert train_tiny.main(TOY + ["--run", str(run), "--out", str(out), "--stop-after-vae"]) == 0
    assert not out.exists()
    with pytest.raises(SystemExit, match="no finished position teacher"):  # its checkpoint: the VAE stage
        train_tiny.main(TOY + ["--run", str(tmp_path / "early"), "--out", str(tmp_path / "early-out"),
                               "--teacher-from", str(run)])
    assert train_tiny.main(TOY + ["--run", str(run), "--out", str(out), "--resume"]) == 0
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in log if "loss" in r} == {"vae", "position", "unet"}
    assert any("judge" in r and r["stage"] == "unet" for r in log)  # figures at the last step
    # the epsilon stage learns from the position teacher: pure-noise samples, their loss logged
    assert any("distill_loss" in r for r in log if r.get("stage") == "unet")
    assert any(r.get("done") for r in log)

    executor = Executor(settings_for(tmp_path, models))
    result = executor.run(txt2img("toy-shapes", "a large red circle on a blue background", steps=4))
    assert read_png(result.images[0]["path"]).shape == (64, 64, 3)

    # --init-from fine-tunes a saved model: no VAE stage (the VAE and its scaling factor kept); a position
    # teacher is trained for it. --distill 0 trains on the epsilon objective alone.
    tuned = models / "checkpoints" / "toy-shapes-tuned"
    assert train_tiny.main(TOY + ["--run", str(tmp_path / "run2"), "--out", str(tuned), "--init-from", str(out),
                                   "--distill", "0"]) == 0
    log2 = [json.loads(line) for line in (tmp_path / "run2" / "log.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in log2 if "loss" in r} == {"position", "unet"}
    assert not any("distill_loss" in r for r in log2)
    vae_files = [sorted((m / "vae").glob("*.safetensors"))[0].read_bytes() for m in (out, tuned)]
    assert vae_files[0] == vae_files[1]
    assert json.loads((tuned / "vae" / "config.json").read_text())["scaling_factor"] == \
        json.loads((out / "vae" / "config.json").read_text())["scaling_factor"]


def test_xl_pair_exports_a_base_and_refiner_our_loader_recognises(tmp_path):
    run, models = tmp_path / "run", tmp_path / "models"
    out = models / "checkpoints" / "toy-shapes-xl"
    assert train_tiny.main(TOY + ["--xl", "--run", str(run), "--xl-out", str(out)]) == 0
    executor = Executor(settings_for(tmp_path, models))
    workflow = base_and_refiner(prompt="a large red circle", steps=10, split=8, size=64)
    workflow["nodes"]["base"]["inputs"]["ckpt_name"] = "toy-shapes-xl"
    workflow["nodes"]["refiner"]["inputs"]["ckpt_name"] = "toy-shapes-xl-refiner"
    result = executor.run(workflow)
    assert read_png(result.images[0]["path"]).shape == (64, 64, 3)
    # the base encodes with both text encoders, the refiner with the second only
    assert sorted(len(clip.encoders) for _, clip, _ in executor.loaded_models()) == [1, 2]


def test_init_from_with_a_teacher_taken_over_and_the_decoder_sharpened(tmp_path):
    run, models = tmp_path / "run", tmp_path / "models"
    out = models / "checkpoints" / "toy-shapes"
    assert train_tiny.main(TOY + ["--run", str(run), "--out", str(out)]) == 0
    # --teacher-from: no position stage (the teacher comes from the first run's checkpoint), yet the
    # epsilon stage distils from it; --decoder-steps: the decoder alone learns, so the latents stay.
    tuned = models / "checkpoints" / "toy-shapes-tuned"
    assert train_tiny.main(TOY + ["--run", str(tmp_path / "run2"), "--out", str(tuned), "--init-from", str(out),
                                   "--teacher-from", str(run), "--decoder-steps", "2"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run2" / "log.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in log if "loss" in r} == {"decoder", "unet"}
    assert any("distill_loss" in r for r in log if r.get("stage") == "unet")
    before, after = (load_file(sorted((m / "vae").glob("*.safetensors"))[0]) for m in (out, tuned))
    assert all(before[k].equal(after[k]) for k in before if k.startswith(("encoder.", "quant_conv.")))
    assert not all(before[k].equal(after[k]) for k in before if k.startswith("decoder."))
    assert json.loads((tuned / "vae" / "config.json").read_text())["scaling_factor"] == \
        json.loads((out / "vae" / "config.json").read_text())["scaling_factor"]
    executor = Executor(settings_for(tmp_path, models))
    result = executor.run(txt2img("toy-shapes-tuned", "a large red circle on a blue background", steps=4))
    assert read_png(result.images[0]["path"]).shape == (64, 64, 3)

    # --fade-steps: the UNet alone learns (text encoder and VAE kept), from a frozen copy of itself; a
    # resumed part takes that copy from the checkpoint, not from the half-trained UNet.
    faded = models / "checkpoints" / "toy-shapes-faded"
    fade = TOY + ["--run", str(tmp_path / "run3"), "--out", str(faded), "--init-from", str(tuned),
                  "--position-steps", "0", "--unet-steps", "0", "--fade-steps", "3"]
    assert train_tiny.main(fade + ["--max-minutes", "1e-6"]) == 1  # stopped after its first step
    part = torch.load(tmp_path / "run3" / "checkpoint.pt", weights_only=False)
    assert (part["stage"], part["step"]) == ("fade", 1)
    unet_before = load_file(tuned / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(part["models"]["fade_teacher"][k].equal(v.float()) for k, v in unet_before.items())
    assert train_tiny.main(fade + ["--resume"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run3" / "log.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in log if "loss" in r} == {"fade"}
    for part_name in ("vae", "text_encoder"):
        files = [sorted((m / part_name).glob("*.safetensors"))[0].read_bytes() for m in (tuned, faded)]
        assert files[0] == files[1], part_name
    result = executor.run(txt2img("toy-shapes-faded", "a large red circle on a blue background", steps=4))
    assert read_png(result.images[0]["path"]).shape == (64, 64, 3)


def test_fade_target_lets_the_prompt_fade_out_on_the_last_steps():
    args = train_tiny.parse_args(TOY + ["--position-steps", "0", "--fade-steps", "1", "--fade-below", "300"])
    c = train_tiny.build_components(args)
    stage, teacher = train_tiny.fade_stage(args, c), c["fade_teacher"]
    captions = ["a large red circle on a blue background"] * 4
    x, t = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 150, 300, 999])
    with torch.no_grad():
        hidden, _ = stage.encode(captions, "cpu")
        empty, _ = stage.encode([""] * 4, "cpu")
        target = stage.target(x, t, captions, hidden)
        cond, uncond = teacher(x, t, hidden).sample, teacher(x, t, empty).sample
    assert not torch.allclose(cond, uncond, atol=1e-4)  # the prompt matters to the teacher
    assert torch.allclose(target[0], uncond[0], atol=1e-6)  # timestep 0: the prompt has no say
    assert torch.allclose(target[1], (uncond + 0.5 * (cond - uncond))[1], atol=1e-6)  # half way down the ramp
    assert torch.allclose(target[2:], cond[2:], atol=1e-6)  # from --fade-below up: the teacher as it was
    # --fade-weight scales the prompt's weight everywhere; --fade-below 0 drops the ramp
    for below, weights in (("300", [0, 0.25, 0.5, 0.5]), ("0", [0.5] * 4)):
        args = train_tiny.parse_args(TOY + ["--position-steps", "0", "--fade-steps", "1", "--fade-below", below,
                                            "--fade-weight", "0.5"])
        stage = train_tiny.fade_stage(args, c)
        assert stage.focus == (int(below) or None)  # no ramp: no band of timesteps to dwell on
        with torch.no_grad():
            target = stage.target(x, t, captions, hidden)
        for i, w in enumerate(weights):
            assert torch.allclose(target[i], (uncond + w * (cond - uncond))[i], atol=1e-6), (below, i)
    with pytest.raises(SystemExit, match="not --xl"):
        train_tiny.main(["--xl", "--fade-steps", "1"])
    # a teacher that nothing would use (from scratch, --distill 0 still starts the UNet from it)
    for useless in (["--position-steps", "0"], ["--distill", "0", "--init-from", "runs/any-model"], ["--xl"]):
        with pytest.raises(SystemExit, match="--teacher-from takes effect only"):
            train_tiny.main(["--teacher-from", "runs/any"] + useless)


def test_swap_context_gives_the_shape_word_on_another_colours_states():
    args = train_tiny.parse_args(TOY + ["--position-steps", "0", "--fade-steps", "1", "--swap-context", "1"])
    c = train_tiny.build_components(args)
    stage = train_tiny.fade_stage(args, c)
    captions = ["a small purple circle on a red background, at the left", "a large white square", ""]
    with torch.no_grad():
        hidden, _ = stage.encode(captions, "cpu")
        seen = stage.perturb(captions, hidden, random.Random(0))
        for i, caption in enumerate(captions[:2]):
            shape_word = 4  # <start> a size colour shape
            assert torch.equal(seen[i, :shape_word], hidden[i, :shape_word])  # up to the colour word: as it was
            assert not torch.equal(seen[i, shape_word:], hidden[i, shape_word:])
            words = shapes.parse_caption(caption)
            allowed = [k for k in shapes.COLOURS if k not in (words["colour"], words.get("background"))
                       and (k, words["shape"]) not in shapes.WITHHELD]
            others = {k: stage.encode([caption.replace(words["colour"], k, 1)], "cpu")[0][0] for k in allowed}
            # from the shape word on: the states of the same caption with an allowed colour, never the background's
            assert [k for k, states in others.items() if torch.equal(seen[i, shape_word:], states[shape_word:])]
    assert torch.equal(seen[2], hidden[2])  # no colour word: unchanged
    with pytest.raises(SystemExit, match="acts in the fade stage"):
        train_tiny.main(["--swap-context", "0.25"])

