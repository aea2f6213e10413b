"""ControlNet: a control image (edges, depth, pose...) steers the UNet through a ControlNet's residuals.

As in ComfyUI, a ControlNet is attached to a conditioning (ControlNetApply: one prompt;
ControlNetApplyAdvanced: the positive and the negative), ControlNets applied one after another add
their residuals, and the sampler runs them with the prompts they are attached to. With the same
ControlNet on both prompts the image equals diffusers' StableDiffusion(XL)ControlNetPipeline's
(control_guidance_start / end: fractions of the sampler's steps, as diffusers counts them).
"""
from __future__ import annotations

import dataclasses

from latentgraph.graph.errors import InputError
from latentgraph.lazy import F, torch
from latentgraph.nodes import folders
from latentgraph.nodes.image import center_crop
from latentgraph.nodes.loaders import load_one_model, pickle_refusal
from latentgraph.nodes.spec import COMBO, CONDITIONING, CONTROL_NET, FLOAT, IMAGE, VAE, Input, Output, node
from latentgraph.nodes.values import Conditioning, ControlHint, ControlNet, DiffusionModel


@node("ControlNetLoader", category="loaders",
      description="Loads a ControlNet from models/controlnet: a diffusers folder (config.json beside the weights) "
                  "or a single .safetensors file for SD1.5 or SDXL.",
      inputs=[Input("control_net_name", COMBO, choices_from="controlnets", file_folder="controlnet",
                    tooltip="A ControlNet in models/controlnet.")],
      outputs=[Output("CONTROL_NET", CONTROL_NET)],
      holds_models=True, check=pickle_refusal("control_net_name", "file"))
def controlnet_loader(ctx, control_net_name: str):
    path = folders.list_controlnets(ctx.settings).get(control_net_name)
    if path is None:
        raise InputError("control_net_name", folders.not_found(ctx.settings, "controlnet", control_net_name))
    net = load_one_model(path, ctx.dtype, "ControlNetModel", "load_controlnet")
    return (ControlNet(net=net.to(ctx.device).eval(), name=control_net_name),)


def _attach(cond: Conditioning, hint: ControlHint) -> Conditioning:
    """The conditioning with this ControlNet added after those already applied (each combined prompt too)."""
    return dataclasses.replace(cond, control=cond.control + (hint,), also=tuple(_attach(c, hint) for c in cond.also))


def _check_range(values: dict) -> list[tuple[str, str]]:
    if values["end_percent"] < values["start_percent"]:
        return [("end_percent", f"ends ({values['end_percent']}) before it starts ({values['start_percent']})")]
    return []


STRENGTH = Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01,
                 tooltip="Scales the ControlNet's residuals (diffusers' controlnet_conditioning_scale); 0 turns "
                         "it off.")
IMAGE_INPUT = Input("image", IMAGE, tooltip="The control image (an edge map, depth map, pose...). A picture of another "
                                            "size is centre-cropped to the latent's aspect and resized to its size.")


@node("ControlNetApply", category="conditioning/controlnet",
      description="Attaches a ControlNet and its control image to one conditioning (usually the positive).",
      inputs=[Input("conditioning", CONDITIONING), Input("control_net", CONTROL_NET), IMAGE_INPUT, STRENGTH],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def controlnet_apply(ctx, conditioning: Conditioning, control_net: ControlNet, image: torch.Tensor, strength: float):
    if strength == 0:
        return (conditioning,)
    return (_attach(conditioning, ControlHint(control_net, image, strength)),)


@node("ControlNetApplyAdvanced", category="conditioning/controlnet",
      description="Attaches a ControlNet to the positive and the negative conditioning, acting from start_percent to "
                  "end_percent of the sampler's steps (as diffusers' StableDiffusionControlNetPipeline).",
      inputs=[Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("control_net", CONTROL_NET),
              IMAGE_INPUT, STRENGTH,
              Input("start_percent", FLOAT, default=0.0, min=0.0, max=1.0, step=0.001,
                    tooltip="Fraction of the steps before the ControlNet starts acting."),
              Input("end_percent", FLOAT, default=1.0, min=0.0, max=1.0, step=0.001,
                    tooltip="Fraction of the steps after which it stops."),
              Input("vae", VAE, required=False, tooltip="Accepted for ComfyUI's workflows; not needed by SD1.5 and "
                                                        "SDXL ControlNets.")],
      outputs=[Output("positive", CONDITIONING), Output("negative", CONDITIONING)],
      check=_check_range)
def controlnet_apply_advanced(ctx, positive: Conditioning, negative: Conditioning, control_net: ControlNet,
                              image: torch.Tensor, strength: float, start_percent: float, end_percent: float,
                              vae=None):
    if strength == 0:
        return (positive, negative)
    hint = ControlHint(control_net, image, strength, start_percent, end_percent)  # one hint: one batched run
    return (_attach(positive, hint), _attach(negative, hint))


class Controls:
    """The ControlNet residuals for a UNet call whose batch is made of groups of `batch` rows, one
    group per conditioning in `groups`. A ControlNet attached to every group of a call runs once on the
    whole batch (as diffusers' pipelines run it); one attached to some gets zero residuals elsewhere."""

    def __init__(self, model: DiffusionModel, groups: list[Conditioning], batch: int, size: tuple[int, int],
                 names: list[str]):
        self.groups, self.batch = groups, batch
        self.hints: list[ControlHint] = []
        self.images: dict[int, torch.Tensor] = {}  # by id of the hint
        for cond, name in zip(groups, names):
            for hint in cond.control:
                if hint not in self.hints:
                    _check_fits(model, hint, cond, name)
                    self.hints.append(hint)
                    self.images[id(hint)] = _control_image(hint, batch, size, name)

    def residuals(self, model_input, t, embeds, added, step: int, total: int, rows: list[int]) -> dict:
        """UNet keyword arguments with the summed residuals for a batch made of the groups `rows`."""
        down = mid = None
        for hint in self.hints:
            where = [n for n, g in enumerate(rows) if hint in self.groups[g].control]
            if not where or not hint.acts_at(step, total):
                continue
            net = hint.control_net.net
            x, text, extra = model_input, embeds, added
            index = None
            if len(where) < len(rows):  # only some prompts carry it: run it on their rows
                index = torch.cat([torch.arange(n * self.batch, (n + 1) * self.batch) for n in where]).to(x.device)
                x, text = x[index], text[index]
                extra = {k: v[index] for k, v in extra.items()} if extra else None
            image = torch.cat([self.images[id(hint)]] * len(where)).to(device=x.device, dtype=net.dtype)
            hint_down, hint_mid = net(x.to(net.dtype), t, encoder_hidden_states=text.to(net.dtype),
                                      controlnet_cond=image, conditioning_scale=hint.strength, guess_mode=False,
                                      added_cond_kwargs=extra if net.config.addition_embed_type else None,
                                      return_dict=False)
            if index is not None:
                hint_down = [_spread(r, index, len(rows) * self.batch) for r in hint_down]
                hint_mid = _spread(hint_mid, index, len(rows) * self.batch)
            # summed in the order applied, as diffusers' MultiControlNetModel sums its nets
            down = hint_down if down is None else [a + b for a, b in zip(down, hint_down)]
            mid = hint_mid if mid is None else mid + hint_mid
        if down is None:
            return {}
        return {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}


def _spread(rows: torch.Tensor, index: torch.Tensor, total: int) -> torch.Tensor:
    out = rows.new_zeros((total, *rows.shape[1:]))
    out[index] = rows
    return out


def _check_fits(model: DiffusionModel, hint: ControlHint, cond: Conditioning, name: str) -> None:
    config, unet = hint.control_net.net.config, model.unet.config
    label = f"ControlNet {hint.control_net.name!r}"
    if config.cross_attention_dim != cond.embeds.shape[-1]:
        raise InputError(name, f"{label} takes {config.cross_attention_dim}-wide prompts, this model's are "
                               f"{cond.embeds.shape[-1]}: use a ControlNet made for this model's family")
    if tuple(config.block_out_channels) != tuple(unet.block_out_channels) or \
            (config.addition_embed_type or None) != (unet.addition_embed_type or None):
        raise InputError(name, f"{label} does not fit this model's UNet (blocks {tuple(config.block_out_channels)} "
                               f"vs {tuple(unet.block_out_channels)}): use a ControlNet made for this model")
    cells = 2 ** (len(config.conditioning_embedding_out_channels) - 1)
    if cells != model.vae_scale_factor:
        raise InputError(name, f"{label} reads its image at {cells} pixels per latent cell, this model's VAE has "
                               f"{model.vae_scale_factor}: use a ControlNet made for this model")


def _control_image(hint: ControlHint, batch: int, size: tuple[int, int], name: str) -> torch.Tensor:
    """The control image at the picture's size, one per latent of the batch. Another size is
    centre-cropped to the aspect and resized (nearest-exact, as ComfyUI does; diffusers would resize
    without cropping)."""
    image = hint.image.float()
    height, width = size
    if tuple(image.shape[-2:]) != (height, width):
        image = F.interpolate(center_crop(image, width / height), size=(height, width), mode="nearest-exact")
    if image.shape[0] == 1:
        return image.repeat(batch, 1, 1, 1)
    if image.shape[0] != batch:
        raise InputError(name, f"ControlNet {hint.control_net.name!r} has {image.shape[0]} control images for "
                               f"{batch} latents: give one image, or one per latent")
    return image
