"""The tiny-shapes model's components: SD1.5's types at a few MB (issue 4)."""
from __future__ import annotations

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, PNDMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from .shapes import VOCAB_WORDS

MAX_LENGTH = 77  # as SD1.5, so prompt handling written for real checkpoints applies unchanged

# SD1.5's noise schedule, as its own scheduler_config.json states it.
SCHEDULER_CONFIG = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1,
                        set_alpha_to_one=False, skip_prk_steps=True, clip_sample=False)


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable character table, in CLIP's vocabulary order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _bpe(pieces: list[str], merges: list[tuple[str, str]]) -> list[str]:
    rank = {m: i for i, m in enumerate(merges)}
    while len(pieces) > 1:
        pairs = [(rank.get(p, len(rank)), i) for i, p in enumerate(zip(pieces, pieces[1:]))]
        r, i = min(pairs)
        if r == len(rank):
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2:]
    return pieces


def build_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """A CLIP BPE tokenizer laid out as CLIP's (bytes, bytes+</w>, merges, BOS, EOS) whose merges
    make every caption word exactly one token: one embedding per word is faster to learn than
    byte pieces. Other words still tokenize (into byte pieces)."""
    chars = _bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in VOCAB_WORDS:
        # Apply the merges so far as BPE would (lowest rank first), then append merges that join
        # what is left; appended merges rank last, so they change no earlier word.
        pieces = _bpe(list(word[:-1]) + [word[-1] + "</w>"], merges)
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            if pieces[0] not in vocab:
                vocab.append(pieces[0])
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, model_max_length=MAX_LENGTH,
                         pad_token=pad_token)


def build_text_encoder(tok: CLIPTokenizer, hidden: int = 64, layers: int = 2, heads: int = 4,
                       projection_dim: int | None = None, cls=CLIPTextModel):
    config = CLIPTextConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                            num_hidden_layers=layers, num_attention_heads=heads,
                            max_position_embeddings=MAX_LENGTH, hidden_act="quick_gelu",
                            projection_dim=projection_dim or hidden,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id)
    return cls(config)


def build_vae(channels=(32, 64, 64)) -> AutoencoderKL:
    """64x64 px -> 16x16x4 latents with 3 blocks (two downsamplings), 8x8x4 with 4. No mid-block attention:
    flat colours and sharp edges need local detail, not global mixing, and it costs time."""
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * len(channels),
                        up_block_types=("UpDecoderBlock2D",) * len(channels),
                        block_out_channels=tuple(channels), layers_per_block=1, latent_channels=4,
                        norm_num_groups=16, sample_size=64, mid_block_add_attention=False)
    # Start the posterior's log-variance very low: its noise otherwise drowns the early signal.
    with torch.no_grad():
        vae.quant_conv.bias[4:].fill_(-8.0)
    return vae


def build_unet(cross_dim: int = 64, channels=(32, 64, 128), sample_size: int = 16) -> UNet2DConditionModel:
    """Cross-attention at every resolution (16, 8 and 4 latent px): colour and position are decided
    at full latent resolution, layout at the coarse ones."""
    n = len(channels)
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * n, up_block_types=("CrossAttnUpBlock2D",) * n,
        block_out_channels=tuple(channels), layers_per_block=1, cross_attention_dim=cross_dim,
        attention_head_dim=tuple(c // 16 for c in channels), norm_num_groups=8)  # heads of 16 dims


def train_scheduler():
    from diffusers import DDPMScheduler
    cfg = {k: v for k, v in SCHEDULER_CONFIG.items() if k not in ("set_alpha_to_one", "skip_prk_steps")}
    return DDPMScheduler(**cfg)


def shipped_scheduler() -> PNDMScheduler:
    """The scheduler saved with the model: SD1.5's own (PNDM, leading spacing, offset 1). PNDM takes
    no clip_sample, but SD1.5's config carries clip_sample=False so that a DDIM or DDPM scheduler
    made from it does not clip the latents to [-1, 1]; so does this one's."""
    sched = PNDMScheduler(**{k: v for k, v in SCHEDULER_CONFIG.items() if k != "clip_sample"})
    sched.register_to_config(clip_sample=False)
    return sched


def euler(scheduler_config) -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler.from_config(scheduler_config)


# --- SDXL types (the recommended tiny-shapes-xl base + refiner pair) ---
XL_TIME_EMBED = 8  # addition_time_embed_dim: each of the 6 (base) or 5 (refiner) time ids


def build_text_encoder_2(tok: CLIPTokenizer) -> CLIPTextModelWithProjection:
    """SDXL's second encoder: wider than the first (96 vs 64) and 10 layers deep, so that
    single-file tools that look for its tenth layer recognise an SDXL checkpoint."""
    return build_text_encoder(tok, hidden=96, layers=10, heads=6, projection_dim=96, cls=CLIPTextModelWithProjection)


def build_xl_unet(cross_dim: int, n_time_ids: int, channels=(32, 64, 128), sample_size: int = 16,
                  pooled_dim: int = 96) -> UNet2DConditionModel:
    """As build_unet, plus SDXL's text_time embedding (pooled text + size/crop/aesthetic ids)."""
    n = len(channels)
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * n, up_block_types=("CrossAttnUpBlock2D",) * n,
        block_out_channels=tuple(channels), layers_per_block=1, cross_attention_dim=cross_dim,
        attention_head_dim=tuple(c // 16 for c in channels), norm_num_groups=8,
        addition_embed_type="text_time", addition_time_embed_dim=XL_TIME_EMBED,
        projection_class_embeddings_input_dim=pooled_dim + n_time_ids * XL_TIME_EMBED)


def xl_scheduler() -> EulerDiscreteScheduler:
    """SDXL's own scheduler config: Euler, SD's betas, leading spacing, offset 1."""
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1,
                                   timestep_spacing="leading", interpolation_type="linear")
    sched.register_to_config(clip_sample=False)  # as SDXL's config, for schedulers made from it
    return sched
