"""ModelSamplingDiscrete (v-prediction, zero terminal SNR) samples as diffusers' StableDiffusionPipeline
with those scheduler settings, bit for bit; single files marked `v_pred` / `ztsnr` load with them."""
from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from helpers import read_png, txt2img
from safetensors import safe_open
from safetensors.torch import save_file
from test_fidelity_sd15 import as_uint8
from test_single_file import write_family

from latentgraph import tiny_random
from latentgraph.graph.errors import NodeError, WorkflowInvalid
from latentgraph.graph.executor import Executor
from latentgraph.nodes import single_file


def with_sampling(wf: dict, sampling: str, zsnr: bool) -> dict:
    wf["nodes"]["sampling"] = {"type": "ModelSamplingDiscrete", "inputs": {
        "model": {"node": "ckpt", "output": "MODEL"}, "sampling": sampling, "zsnr": zsnr}}
    wf["nodes"]["sampler"]["inputs"]["model"] = {"node": "sampling", "output": "MODEL"}
    return wf


@pytest.mark.parametrize(("sampler", "spacing", "zsnr"), [("euler", ("normal", "linspace"), False),
                                                          ("euler", ("simple", "trailing"), True),
                                                          ("dpmpp_2m", ("simple", "trailing"), True)])
def test_v_prediction_equals_the_pipeline_with_those_settings(executor, sampler, spacing, zsnr):
    wf = with_sampling(txt2img(seed=9, steps=6, sampler_name=sampler, scheduler=spacing[0]), "v_prediction", zsnr)
    ours = read_png(executor.run(wf).images[0]["path"])
    ((model, clip, vae),) = executor.loaded_models()
    cls, flags = {"euler": ("EulerDiscreteScheduler", {}),
                  "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"})}[sampler]
    scheduler = getattr(diffusers, cls).from_config(model.scheduler_config, prediction_type="v_prediction",
                                                    rescale_betas_zero_snr=zsnr, timestep_spacing=spacing[1], **flags)
    pipe = diffusers.StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                             unet=model.unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    theirs = pipe("a red circle", negative_prompt="", num_inference_steps=6, guidance_scale=6.0, height=64, width=64,
                  generator=torch.Generator("cpu").manual_seed(9), output_type="np").images
    plain = read_png(executor.run(txt2img(seed=9, steps=6, sampler_name=sampler, scheduler=spacing[0]))
                     .images[0]["path"])
    assert np.abs(ours.astype(int) - plain).mean() > 1  # the setting reached the sampler
    assert np.array_equal(ours, as_uint8(theirs)[0])


def test_eps_without_zsnr_changes_nothing(executor):
    plain = read_png(executor.run(txt2img(seed=4, steps=4)).images[0]["path"])
    assert np.array_equal(read_png(executor.run(with_sampling(txt2img(seed=4, steps=4), "eps", False))
                                   .images[0]["path"]), plain)


def test_refusals_name_the_input(executor):
    with pytest.raises(NodeError) as no_zsnr:
        executor.run(with_sampling(txt2img(steps=2, sampler_name="heun"), "eps", True))
    assert (no_zsnr.value.error.node_id, no_zsnr.value.error.input) == ("sampler", "sampler_name")
    assert "euler" in no_zsnr.value.error.message
    with pytest.raises(WorkflowInvalid) as lcm:
        executor.run(with_sampling(txt2img(steps=2), "lcm", False))
    (error,) = lcm.value.errors
    assert (error.node_id, error.input, error.kind) == ("sampling", "sampling", "unsupported")


def test_single_files_marked_v_pred_and_ztsnr_load_with_those_settings(tmp_path):
    path = write_family(tmp_path, "sd15", tiny_random.sd15_components(seed=2), shipped=True)
    model = single_file.load(path, "cpu", torch.float32, configs=tmp_path / "configs")[0]
    assert model.scheduler_config["prediction_type"] == "epsilon"
    assert not model.scheduler_config.get("rescale_betas_zero_snr")
    with safe_open(str(path), framework="pt") as handle:
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    save_file({**state, "v_pred": torch.tensor([]), "ztsnr": torch.tensor([])}, str(tmp_path / "marked.safetensors"))
    marked = single_file.load(tmp_path / "marked.safetensors", "cpu", torch.float32, configs=tmp_path / "configs")[0]
    assert marked.scheduler_config["prediction_type"] == "v_prediction"
    assert marked.scheduler_config["rescale_betas_zero_snr"] is True


def test_freeu_equals_diffusers_enable_freeu_and_leaves_the_shared_unet_as_it_was(executor):
    plain_wf = txt2img(seed=6, steps=5)
    wf = txt2img(seed=6, steps=5)
    wf["nodes"]["freeu"] = {"type": "FreeU", "inputs": {"model": {"node": "ckpt", "output": "MODEL"},
                                                        "b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}}
    wf["nodes"]["sampler"]["inputs"]["model"] = {"node": "freeu", "output": "MODEL"}
    plain = read_png(executor.run(plain_wf).images[0]["path"])
    ((model, clip, vae),) = executor.loaded_models()
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0], unet=model.unet,
        scheduler=diffusers.EulerDiscreteScheduler.from_config(model.scheduler_config, timestep_spacing="linspace"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.enable_freeu(s1=0.9, s2=0.2, b1=1.3, b2=1.4)
    theirs = pipe("a red circle", negative_prompt="", num_inference_steps=5, guidance_scale=6.0, height=64, width=64,
                  generator=torch.Generator("cpu").manual_seed(6), output_type="np").images
    pipe.disable_freeu()
    ours = read_png(executor.run(wf).images[0]["path"])
    assert np.abs(ours.astype(int) - plain).mean() > 1
    assert np.array_equal(ours, as_uint8(theirs)[0])
    # A graph without FreeU sampled afterwards on the same loaded UNet (a new seed: not from the cache)
    # gives what a fresh process gives.
    after = executor.run(txt2img(seed=7, steps=5))
    assert next(r.status for r in after.report if r.node_id == "sampler") == "executed"
    fresh = Executor(executor.settings).run(txt2img(seed=7, steps=5))
    assert np.array_equal(read_png(after.images[0]["path"]), read_png(fresh.images[0]["path"]))


@pytest.mark.parametrize("cfg", [6.0, 1.0])
def test_rescale_cfg_equals_the_pipelines_guidance_rescale(executor, cfg):
    """With v-prediction and zero terminal SNR, as it is meant for; at cfg 1 (no guidance) it does nothing,
    as in the pipeline."""
    def workflow(multiplier):
        wf = with_sampling(txt2img(seed=3, steps=6, cfg=cfg, scheduler="simple"), "v_prediction", True)
        wf["nodes"]["sampling"]["inputs"]["model"] = {"node": "rescale", "output": "MODEL"}
        wf["nodes"]["rescale"] = {"type": "RescaleCFG", "inputs": {"model": {"node": "ckpt", "output": "MODEL"},
                                                                   "multiplier": multiplier}}
        return wf
    ours = read_png(executor.run(workflow(0.7)).images[0]["path"])
    plain = read_png(executor.run(workflow(0.0)).images[0]["path"])
    ((model, clip, vae),) = executor.loaded_models()
    scheduler = diffusers.EulerDiscreteScheduler.from_config(
        model.scheduler_config, prediction_type="v_prediction", rescale_betas_zero_snr=True,
        timestep_spacing="trailing")
    pipe = diffusers.StableDiffusionPipeline(vae=vae.vae, text_encoder=clip.encoders[0], tokenizer=clip.tokenizers[0],
                                             unet=model.unet, scheduler=scheduler, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)
    theirs = pipe("a red circle", negative_prompt="", num_inference_steps=6, guidance_scale=cfg, height=64, width=64,
                  guidance_rescale=0.7, generator=torch.Generator("cpu").manual_seed(3), output_type="np").images
    assert np.array_equal(ours, as_uint8(theirs)[0])
    assert np.array_equal(ours, plain) == (cfg <= 1)  # the multiplier reached the sampler where it acts
