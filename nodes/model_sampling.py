"""Model patches: ModelSamplingDiscrete (what a checkpoint predicts and its noise schedule, for
checkpoints whose files do not say: v-prediction fine-tunes, zero terminal SNR), RescaleCFG and FreeU."""
from __future__ import annotations

import dataclasses

from latentgraph.nodes.spec import BOOLEAN, COMBO, FLOAT, MODEL, Input, Output, node
from latentgraph.nodes.values import DiffusionModel

# ComfyUI's names -> diffusers' prediction_type
PREDICTIONS = {"eps": "epsilon", "v_prediction": "v_prediction"}
REFUSED = {
    "lcm": "LCM distillation's output is ComfyUI's own scaling; pick sampler_name 'lcm' with an LCM checkpoint",
    "x0": "diffusers' samplers take noise or v predictions from SD1.5 and SDXL checkpoints",
    "img_to_img": "ComfyUI's image-to-image model sampling has no diffusers counterpart",
}


@node("ModelSamplingDiscrete", category="advanced/model",
      description="Tells the samplers what this model predicts (noise or v) and whether it was trained with zero "
                  "terminal SNR (diffusers' prediction_type and rescale_betas_zero_snr).",
      inputs=[Input("model", MODEL),
              Input("sampling", COMBO, default="eps", choices=list(PREDICTIONS), refused_choices=REFUSED,
                    tooltip="eps: the noise (SD1.5, SDXL); v_prediction: v (e.g. SD2-768 and v-pred fine-tunes)."),
              Input("zsnr", BOOLEAN, default=False,
                    tooltip="Zero terminal SNR: the noise schedule rescaled so that its last step is pure noise. "
                            "Samplers without this setting in diffusers are refused.")],
      outputs=[Output("MODEL", MODEL)])
def model_sampling_discrete(ctx, model: DiffusionModel, sampling: str, zsnr: bool):
    config = {**model.scheduler_config, "prediction_type": PREDICTIONS[sampling], "rescale_betas_zero_snr": zsnr}
    return (dataclasses.replace(model, scheduler_config=config),)


@node("RescaleCFG", category="advanced/model",
      description="Rescales the guided prediction towards the positive prompt's spread, as diffusers' "
                  "guidance_rescale does (for v-prediction and zero terminal SNR models, whose high cfg "
                  "overexposes).",
      inputs=[Input("model", MODEL),
              Input("multiplier", FLOAT, default=0.7, min=0.0, max=1.0, step=0.01,
                    tooltip="How much of the rescaled prediction to use (0: plain cfg).")],
      outputs=[Output("MODEL", MODEL)])
def rescale_cfg(ctx, model: DiffusionModel, multiplier: float):
    return (dataclasses.replace(model, guidance_rescale=multiplier),)


def _factor(name: str, default: float, what: str) -> Input:
    return Input(name, FLOAT, default=default, min=0.0, max=10.0, step=0.01, tooltip=what)


@node("FreeU", category="model_patches",
      description="FreeU as diffusers' enable_freeu applies it: in the first two up-blocks of the UNet, half the "
                  "backbone channels are scaled by b1 / b2 and the skip features' low frequencies by s1 / s2.",
      inputs=[Input("model", MODEL),
              _factor("b1", 1.1, "Backbone scale in the first up-block."),
              _factor("b2", 1.2, "Backbone scale in the second up-block."),
              _factor("s1", 0.9, "Skip-feature scale in the first up-block."),
              _factor("s2", 0.2, "Skip-feature scale in the second up-block.")],
      outputs=[Output("MODEL", MODEL)])
def free_u(ctx, model: DiffusionModel, b1: float, b2: float, s1: float, s2: float):
    return (dataclasses.replace(model, freeu={"s1": s1, "s2": s2, "b1": b1, "b2": b2}),)
