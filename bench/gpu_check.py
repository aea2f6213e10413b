"""CUDA checks and GPU figures (run on a machine with an NVIDIA GPU):

    python bench/gpu_check.py --out gpu-report.txt

1. The CUDA paths: models load in float16 on the GPU, cached intermediate results stay on the GPU,
   a re-run with a new ImageSharpen alpha re-runs two nodes, and the fp16 image matches diffusers'
   pipeline on the same modules. LoRA adapters work on the float16 checkpoint (UNet and text
   encoder parts change the image separately) and leave it unchanged for graphs without them.
2. Timing at real scale: a random-weight model with SD1.5's full-size architecture (860M-parameter
   UNet, CLIP ViT-L text encoder, SD's VAE) at 512x512, graph vs pipeline, via bench_txt2img.
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_txt2img  # noqa: E402


def save_full_size_sd15(path: Path) -> None:
    """Random weights, SD1.5's architecture (for timing only: the images are noise)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from latentgraph.tiny_random import make_tokenizer

    tokenizer = make_tokenizer()
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        vocab_size=len(tokenizer), max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(path, safe_serialization=True)


def check_cuda_paths(models: Path, log) -> None:
    import diffusers

    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings
    from latentgraph.tiny_random import save_sd15

    save_sd15(models / "tiny-sd15")
    out = Path(tempfile.mkdtemp())
    executor = Executor(Settings(models=models, output=out, temp=out, device="cuda"))
    wf = bench_txt2img.workflow("tiny-sd15", 64, 20, "a red circle", 1, 0.5)
    executor.run(wf)
    ((model, clip, vae),) = executor.loaded_models()
    log(f"device {executor.device}, dtype {executor.dtype}; unet {model.unet.device} {model.unet.dtype}, "
        f"text encoder {clip.encoders[0].dtype}, vae {vae.vae.dtype}")
    assert model.unet.dtype == torch.float16 and model.unet.device.type == "cuda"
    tensors = [t for entry in executor.cache.results.entries.values() for t in _tensors(entry.outputs)]
    devices = sorted({str(t.device) for t in tensors})
    log(f"cached intermediate tensors: {len(tensors)}, on {devices}, {executor.cache.results.used} bytes")
    assert tensors and all(t.device.type == "cuda" for t in tensors)
    changed = copy.deepcopy(wf)
    changed["nodes"]["sharpen"]["inputs"]["alpha"] = 1.5
    rerun = executor.run(changed)
    ran = sorted(r.node_id for r in rerun.report if r.status == "executed")
    log(f"re-run with a new sharpen alpha executed: {ran}")
    assert ran == ["save", "sharpen"]

    nodes = wf["nodes"]
    nodes["save"]["inputs"]["images"] = {"node": "decode", "output": "IMAGE"}
    del nodes["sharpen"]
    ours = np.array(__import__("PIL.Image").Image.open(executor.run(wf).images[0]["path"]).convert("RGB"))
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        scheduler=diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    theirs = pipe("a red circle", negative_prompt="", num_inference_steps=20, guidance_scale=6.0, height=64, width=64,
                  generator=torch.Generator("cpu").manual_seed(1), output_type="np").images[0]
    theirs = (theirs * 255).round().astype("uint8")
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    log(f"fp16 CUDA graph vs StableDiffusionPipeline on the same modules: max |diff| {diff.max()} "
        f"(of 255), equal pixels {100 * (diff == 0).mean():.2f}%")


def check_lora(models: Path, log, device: str = "cuda") -> None:
    from latentgraph.graph.executor import Executor
    from latentgraph.graph.settings import Settings
    from latentgraph.tiny_random import save_sd15, save_sd15_loras

    save_sd15(models / "checkpoints" / "tiny-sd15-lora", seed=1)
    save_sd15_loras(models / "loras", seed=1)
    out = Path(tempfile.mkdtemp())
    executor = Executor(Settings(models=models, output=out, temp=out, device=device))

    def image(strength_model=None, strength_clip=None, prompt="a red circle"):
        wf = bench_txt2img.workflow("tiny-sd15-lora", 64, 5, prompt, 4, 0.5)
        nodes = wf["nodes"]
        if strength_model is not None:
            nodes["lora"] = {"type": "LoraLoader", "inputs": {
                "model": {"node": "ckpt", "output": "MODEL"}, "clip": {"node": "ckpt", "output": "CLIP"},
                "lora_name": "tiny-style.safetensors", "strength_model": strength_model,
                "strength_clip": strength_clip}}
            nodes["sampler"]["inputs"]["model"] = {"node": "lora", "output": "MODEL"}
            for name in ("pos", "neg"):
                nodes[name]["inputs"]["clip"] = {"node": "lora", "output": "CLIP"}
        return np.asarray(__import__("PIL.Image").Image.open(executor.run(wf).images[0]["path"]), dtype=int)

    plain, both, unet_only = image(), image(0.7, 0.7), image(0.7, 0.0)
    again = image(prompt="a red circle ")  # same tokens, new text: encoded and sampled again after the LoRA runs
    ((model, clip, _),) = executor.loaded_models()
    log(f"LoRA on {model.unet.device} {model.unet.dtype}: |LoRA - plain| max {np.abs(both - plain).max()}, "
        f"|UNet-only - both| max {np.abs(unet_only - both).max()}, plain again after the LoRA: max |diff| "
        f"{np.abs(again - plain).max()}")
    assert model.unet.dtype == clip.encoders[0].dtype == (torch.float16 if device == "cuda" else torch.float32)
    assert np.abs(both - plain).max() > 0 and np.abs(unet_only - both).max() > 0
    assert np.array_equal(again, plain)


def _tensors(value):
    import dataclasses

    if isinstance(value, torch.Tensor):
        yield value
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _tensors(getattr(value, field.name))
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    parser.add_argument("--skip-full-size", action="store_true")
    args = parser.parse_args()
    lines = []

    def log(text):
        print(text, flush=True)
        lines.append(text)

    log(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    models = Path(tempfile.mkdtemp())
    check_cuda_paths(models, log)
    check_lora(models, log)
    from contextlib import redirect_stdout
    from io import StringIO

    runs = [["--models", str(models), "--ckpt", "tiny-sd15", "--device", "cuda", "--repeats", "10"]]
    if Path(__file__).parent.parent.joinpath("assets", "models", "tiny-shapes").is_dir():
        runs.append(["--device", "cuda", "--repeats", "10"])
    if not args.skip_full_size:
        save_full_size_sd15(models / "sd15-size-random")
        runs.append(["--models", str(models), "--ckpt", "sd15-size-random", "--device", "cuda", "--size", "512",
                     "--repeats", "5"])
    for run in runs:
        buffer = StringIO()
        with redirect_stdout(buffer):
            bench_txt2img.main(run)
        log(buffer.getvalue())
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
