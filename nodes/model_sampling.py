"""ModelSamplingDiscrete: what a checkpoint predicts and its noise schedule, for checkpoints whose
files do not say (v-prediction fine-tunes, zero terminal SNR)."""
from __future__ import annotations

import dataclasses

from latentgraph.nodes.spec import BOOLEAN, COMBO, MODEL, Input, Output, node
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
