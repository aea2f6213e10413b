"""Tiny random-weight Stable Diffusion components, built offline the way diffusers' fast tests build
theirs (`get_dummy_components`). Tests use them as real diffusers-format checkpoints; the CLI's
`make-tiny-model` writes one for trying the engine without any download."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a photo of the and on at in with large small red green blue yellow purple orange white black "
         "circle square triangle background center left right top bottom cat dog tree house sky").split()


def bytes_to_unicode() -> dict[int, str]:
    """CLIP's (GPT-2's) reversible byte -> printable character table, which BPE symbols are made of."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars)))


def make_tokenizer(words=WORDS, model_max_length: int = 77, pad_token: str = "<|endoftext|>"):
    """A CLIPTokenizer whose vocabulary holds every byte plus one token per word in `words`."""
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            rule = (parts[0], parts[1])
            if rule not in merges:
                merges.append(rule)
            parts = [parts[0] + parts[1]] + parts[2:]
            vocab.setdefault(parts[0], len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
    if pad_token != "<|endoftext|>":
        tokenizer.pad_token = pad_token
    return tokenizer


def sd15_components(seed: int = 0) -> dict:
    """UNet, VAE, text encoder, tokenizer and scheduler of a tiny SD1.5-type model."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = make_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=32)
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=32)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5,
        vocab_size=len(tokenizer), max_position_embeddings=77))
    # SD1.5's own noise schedule settings (its shipped scheduler is PNDM).
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, skip_prk_steps=True, set_alpha_to_one=False,
                              steps_offset=1, timestep_spacing="leading", prediction_type="epsilon")
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder.eval(), "tokenizer": tokenizer,
            "scheduler": scheduler}


def save_sd15(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny random SD1.5-type checkpoint as a diffusers folder."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**sd15_components(seed), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return Path(path)


def save_sd15_loras(folder: str | Path, seed: int = 1) -> Path:
    """Two LoRAs (rank 4, alpha 8, random non-zero weights) for `sd15_components(seed)`, saved as
    diffusers' training scripts save them (LoraConfig as metadata): tiny-unet.safetensors for the
    UNet only, tiny-style.safetensors for the UNet and the text encoder."""
    from diffusers import StableDiffusionPipeline
    return _save_loras(folder, sd15_components(seed=seed), ["text_encoder"], StableDiffusionPipeline.save_lora_weights)


def save_sdxl_loras(folder: str | Path, seed: int = 0) -> Path:
    """The same two LoRAs for `sdxl_components(seed)`: tiny-unet.safetensors, and tiny-style.safetensors
    with both text encoders too."""
    from diffusers import StableDiffusionXLPipeline
    return _save_loras(folder, sdxl_components(seed=seed), ["text_encoder", "text_encoder_2"],
                       StableDiffusionXLPipeline.save_lora_weights)


def _save_loras(folder, parts: dict, encoders: list[str], save) -> Path:
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(7)
    parts["unet"].add_adapter(LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                                         target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    unet = {"unet_lora_layers": get_peft_model_state_dict(parts["unet"]),
            "unet_lora_adapter_metadata": parts["unet"].peft_config["default"].to_dict()}
    text = {}
    for name in encoders:
        config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False,
                            target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
        inject_adapter_in_model(config, parts[name])
        text.update({f"{name}_lora_layers": get_peft_model_state_dict(parts[name]),
                     f"{name}_lora_adapter_metadata": config.to_dict()})
    save(folder, **unet, safe_serialization=True, weight_name="tiny-unet.safetensors")
    save(folder, **unet, **text, safe_serialization=True, weight_name="tiny-style.safetensors")
    return Path(folder)


def _sdxl_text_encoders(tokenizer, with_first: bool):
    """CLIP ViT-L-like and OpenCLIP bigG-like tiny encoders. The second has 10 layers and another width
    than the first: diffusers tells SDXL from SD1.5 by encoder 2's tenth layer, and tells the two
    encoders apart in a single file by their widths."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def config(hidden: int, layers: int) -> CLIPTextConfig:
        return CLIPTextConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=1, hidden_size=hidden, intermediate_size=37, layer_norm_eps=1e-05,
                              num_attention_heads=4, num_hidden_layers=layers, vocab_size=len(tokenizer),
                              max_position_embeddings=77, hidden_act="gelu", projection_dim=32)

    first = CLIPTextModel(config(32, 5)).eval() if with_first else None
    second = CLIPTextModelWithProjection(config(48, 10)).eval()
    return first, second


def sdxl_components(seed: int = 0, refiner: bool = False) -> dict:
    """The components of a tiny SDXL base (two text encoders, 6 size ids) or refiner (the second
    encoder only, 5 ids: original size, crop and aesthetic score), as diffusers' SDXL fast tests make them."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

    tokenizer, tokenizer_2 = make_tokenizer(), make_tokenizer(pad_token="!")
    time_dim, pooled_dim = 8, 32
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=time_dim, transformer_layers_per_block=(1, 2), norm_num_groups=32,
        projection_class_embeddings_input_dim=(5 if refiner else 6) * time_dim + pooled_dim,
        cross_attention_dim=48 if refiner else 32 + 48)
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=32, sample_size=128, scaling_factor=0.13025)
    torch.manual_seed(seed)
    text_encoder, text_encoder_2 = _sdxl_text_encoders(tokenizer, with_first=not refiner)
    # SDXL's own noise schedule settings (its shipped scheduler is Euler).
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading",
                                       prediction_type="epsilon", interpolation_type="linear")
    return {"unet": unet.eval(), "vae": vae.eval(), "text_encoder": text_encoder,
            "tokenizer": None if refiner else tokenizer, "text_encoder_2": text_encoder_2,
            "tokenizer_2": tokenizer_2, "scheduler": scheduler}


def sdxl_pipeline(seed: int = 0, refiner: bool = False):
    """A tiny SDXL base pipeline, or a refiner (img2img pipeline with aesthetic score conditioning)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    components = sdxl_components(seed, refiner)
    if refiner:
        return StableDiffusionXLImg2ImgPipeline(**components, requires_aesthetics_score=True,
                                                force_zeros_for_empty_prompt=False)
    return StableDiffusionXLPipeline(**components, force_zeros_for_empty_prompt=True)


def save_sdxl(path: str | Path, seed: int = 0, refiner: bool = False) -> Path:
    """Write a tiny random SDXL base or refiner checkpoint as a diffusers folder."""
    sdxl_pipeline(seed, refiner).save_pretrained(path, safe_serialization=True)
    return Path(path)


# --- Single-file checkpoints in the original (LDM / SGM) key layout -------------------------------
# Tests write the tiny models in the layout that .safetensors files from the original training code
# have, so that loading them goes through diffusers' single-file conversion as users' files do.

_RESNET_TO_LDM = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
                  ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection"))
_VAE_ATTENTION_TO_LDM = (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                         ("to_out.0", "proj_out"))


def _rename(rest: str, pairs) -> str:
    head, _, tail = rest.partition(".")
    for new, old in pairs:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest if not tail else f"{head}.{tail}"


def unet_to_ldm(unet) -> dict:
    """A diffusers UNet2DConditionModel's weights under the original UNetModel's names."""
    return {"model.diffusion_model." + _ldm_unet_name(key, unet): tensor for key, tensor in unet.state_dict().items()}


def _ldm_unet_name(key: str, unet) -> str:
    """The original UNetModel's name of a diffusers UNet (or ControlNet) weight."""
    per_level = unet.config.layers_per_block + 1
    has_attention = [hasattr(block, "attentions") for block in getattr(unet, "up_blocks", [])]
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    parts = key.split(".")
    module, param = ".".join(parts[:-1]), parts[-1]
    if module in fixed:
        return f"{fixed[module]}.{param}"
    if parts[0] == "down_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "downsamplers":
            return f"input_blocks.{(i + 1) * per_level}.0.op.{parts[-1]}"
        block = 1 + i * per_level + j
        return (f"input_blocks.{block}.0.{_rename(rest, _RESNET_TO_LDM)}" if kind == "resnets"
                else f"input_blocks.{block}.1.{rest}")
    if parts[0] == "mid_block":
        kind, j, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        return (f"middle_block.{2 * j}.{_rename(rest, _RESNET_TO_LDM)}" if kind == "resnets"
                else f"middle_block.1.{rest}")
    if parts[0] == "up_blocks":
        i, kind, j, rest = int(parts[1]), parts[2], int(parts[3]), ".".join(parts[4:])
        if kind == "upsamplers":
            return f"output_blocks.{i * per_level + per_level - 1}.{2 if has_attention[i] else 1}.{rest}"
        block = i * per_level + j
        return (f"output_blocks.{block}.0.{_rename(rest, _RESNET_TO_LDM)}" if kind == "resnets"
                else f"output_blocks.{block}.1.{rest}")
    raise ValueError(f"no LDM name for UNet weight {key}")


def controlnet_from_unet(unet, seed: int = 0, conditioning_channels=(16, 32, 96, 256)):
    """A ControlNet copied from a UNet (as diffusers' ControlNetModel.from_unet), with random instead
    of zero output convolutions, so that it changes the image (as diffusers' fast tests do). The
    control image is read at the UNet's VAE scale: 2 ** (len(conditioning_channels) - 1) pixels per cell."""
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=tuple(conditioning_channels))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.1)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
    return net.eval()


def controlnet_to_ldm(net) -> dict:
    """A diffusers ControlNetModel's weights under the original ControlNet's names (`control_model.`)."""
    out = {}
    blocks = len(net.controlnet_cond_embedding.blocks)
    for key, tensor in net.state_dict().items():
        parts = key.split(".")
        if parts[0] == "controlnet_cond_embedding":  # input_hint_block: conv, SiLU, conv, SiLU, ...
            index = {"conv_in": 0, "conv_out": 2 * blocks + 2}.get(parts[1])
            name = f"input_hint_block.{2 * int(parts[2]) + 2 if index is None else index}.{parts[-1]}"
        elif parts[0] == "controlnet_down_blocks":
            name = f"zero_convs.{parts[1]}.0.{parts[-1]}"
        elif parts[0] == "controlnet_mid_block":
            name = f"middle_block_out.0.{parts[-1]}"
        else:
            name = _ldm_unet_name(key, net)
        out["control_model." + name] = tensor.contiguous()
    return out


def vae_to_ldm(vae) -> dict:
    """A diffusers AutoencoderKL's weights under the original autoencoder's names."""
    levels = len(vae.config.block_out_channels)
    out = {}
    for key, tensor in vae.state_dict().items():
        parts = key.split(".")
        side = parts[0]
        if parts[1:2] in (["down_blocks"], ["up_blocks"]):
            i, kind, rest = int(parts[2]), parts[3], ".".join(parts[4:])
            level = i if side == "encoder" else levels - 1 - i
            stage = "down" if side == "encoder" else "up"
            if kind == "resnets":
                name = f"{side}.{stage}.{level}.block.{rest}".replace("conv_shortcut", "nin_shortcut")
            else:  # downsamplers.0.conv / upsamplers.0.conv
                name = f"{side}.{stage}.{level}.{'downsample' if side == 'encoder' else 'upsample'}." \
                       f"{'.'.join(parts[5:])}"
        elif parts[1:2] == ["mid_block"]:
            kind, j, rest = parts[2], int(parts[3]), ".".join(parts[4:])
            if kind == "resnets":
                name = f"{side}.mid.block_{j + 1}.{rest}".replace("conv_shortcut", "nin_shortcut")
            else:
                name = f"{side}.mid.attn_1.{_rename(rest, _VAE_ATTENTION_TO_LDM)}"
                if tensor.ndim == 2:  # the original attention uses 1x1 convolutions
                    tensor = tensor[:, :, None, None]
        else:
            name = key.replace("conv_norm_out", "norm_out")
        out["first_stage_model." + name] = tensor
    return out


def clip_to_ldm(encoder, prefix: str) -> dict:
    """A transformers CLIPTextModel's weights as the original checkpoints hold them (same names)."""
    return {f"{prefix}text_model.{key.removeprefix('text_model.')}": tensor
            for key, tensor in encoder.state_dict().items()}


def open_clip_to_ldm(encoder, prefix: str) -> dict:
    """A CLIPTextModelWithProjection's weights under OpenCLIP's names (fused q/k/v, transposed projection)."""
    sd = {key.removeprefix("text_model."): tensor for key, tensor in encoder.state_dict().items()}
    renames = {"embeddings.token_embedding.weight": "token_embedding.weight",
               "embeddings.position_embedding.weight": "positional_embedding",
               "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
    out = {prefix + "text_projection": sd.pop("text_projection.weight").T.contiguous()}
    for key in list(sd):
        if key in renames:
            out[prefix + renames[key]] = sd.pop(key)
    layers = encoder.config.num_hidden_layers
    for i in range(layers):
        src, dst = f"encoder.layers.{i}.", f"{prefix}transformer.resblocks.{i}."
        for param in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{param}"] = torch.cat([sd.pop(f"{src}self_attn.{p}_proj.{param}")
                                                           for p in ("q", "k", "v")])
            for new, old in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                             ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                out[f"{dst}{old}.{param}"] = sd.pop(f"{src}{new}.{param}")
    if sd:
        raise ValueError(f"no OpenCLIP name for {sorted(sd)}")
    return out


def ldm_state_dict(components: dict) -> dict:
    """The state dict of a single-file checkpoint holding a pipeline's components (SD1.5: one CLIP;
    SDXL: CLIP then OpenCLIP as embedders 0 and 1; the refiner: OpenCLIP as embedder 0)."""
    state = {**unet_to_ldm(components["unet"]), **vae_to_ldm(components["vae"])}
    first, second = components.get("text_encoder"), components.get("text_encoder_2")
    if second is None:
        state.update(clip_to_ldm(first, "cond_stage_model.transformer."))
    elif first is None:
        state.update(open_clip_to_ldm(second, "conditioner.embedders.0.model."))
    else:
        state.update(clip_to_ldm(first, "conditioner.embedders.0.transformer."))
        state.update(open_clip_to_ldm(second, "conditioner.embedders.1.model."))
    return state


def save_single_file(path: str | Path, components: dict) -> Path:
    """Write components as one .safetensors checkpoint in the original key layout."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in ldm_state_dict(components).items()}
    save_file(state, str(path))
    return Path(path)
