"""Text encoding: prompts to CONDITIONING, with diffusers' `encode_prompt` semantics."""
from __future__ import annotations

import dataclasses

from latentgraph.lazy import torch
from latentgraph.nodes import folders, prompt_weights
from latentgraph.nodes.embeddings import Embeddings, token_embedding
from latentgraph.nodes.lora import clip_adapters
from latentgraph.nodes.spec import CLIP, CONDITIONING, INT, STRING, Input, Output, node
from latentgraph.nodes.values import Conditioning, TextEncoder


def encode_sd15(clip: TextEncoder, text: str, device, found: Embeddings | None = None) -> Conditioning:
    """The last hidden state of the CLIP text model for the prompt padded to the tokenizer's length
    (`StableDiffusionPipeline.encode_prompt`); weights and longer prompts as `prompt_weights` reads them."""
    tokenizer, encoder = clip.tokenizers[0], clip.encoders[0]
    use_mask = getattr(encoder.config, "use_attention_mask", False)

    def run(input_ids, mask):
        return _last_layers(clip, encoder, input_ids, mask if use_mask else None), None
    vectors = (found or Embeddings()).lookup(encoder)
    with clip_adapters(clip):
        embeds, _ = prompt_weights.encode(tokenizer, text, run, device, vectors=vectors,
                                          token_embedding=token_embedding(encoder))
    return Conditioning(embeds=embeds.to(dtype=encoder.dtype, device=device), empty_prompt=text == "")


def _last_layers(clip: TextEncoder, encoder, input_ids, mask):
    if not clip.clip_skip:
        return encoder(input_ids, attention_mask=mask)[0]
    # diffusers' clip_skip: an earlier layer's hidden states, through the final layer norm.
    hidden = encoder(input_ids, attention_mask=mask, output_hidden_states=True)
    # (transformers 5 flattened CLIPTextModel: the layer norm moved up from `.text_model`.)
    final_layer_norm = getattr(encoder, "text_model", encoder).final_layer_norm
    return final_layer_norm(hidden[-1][-(clip.clip_skip + 1)])


def encode(clip: TextEncoder, text: str, found: Embeddings | None = None) -> Conditioning:
    """`found`: the embedding files `embedding:name` may name."""
    if clip.family == "sd15":
        return encode_sd15(clip, text, clip.encoders[0].device, found)
    from latentgraph.nodes import sdxl  # SDXL's two encoders
    return sdxl.encode(clip, text, found)


@node("CLIPTextEncode", category="conditioning",
      description="Encodes a prompt with the checkpoint's text encoder(s). On an SDXL checkpoint it gives SDXL "
                  "conditioning whose size conditioning follows the latent being sampled.",
      inputs=[Input("text", STRING, default="", multiline=True,
                    tooltip="The prompt. (words:1.3) weighs words up or down, (words) is 1.1; \\( and \\) are "
                            "literal; embedding:name uses models/embeddings/name.safetensors. Past 75 tokens it "
                            "goes on in a further window of the text encoder."),
              Input("clip", CLIP, tooltip="The text encoder (from a checkpoint loader).")],
      outputs=[Output("CONDITIONING", CONDITIONING)])
def clip_text_encode(ctx, text: str, clip: TextEncoder):
    with torch.inference_mode():
        return (encode(clip, text, Embeddings(folders.list_embeddings(ctx.settings))),)


@node("CLIPSetLastLayer", category="conditioning",
      description="Stops the text encoder early ('clip skip'): -1 uses the last layer, -2 the one before it "
                  "(diffusers' clip_skip=1), and so on.",
      inputs=[Input("clip", CLIP),
              Input("stop_at_clip_layer", INT, default=-1, min=-24, max=-1, step=1)],
      outputs=[Output("CLIP", CLIP)])
def clip_set_last_layer(ctx, clip: TextEncoder, stop_at_clip_layer: int):
    return (dataclasses.replace(clip, clip_skip=-stop_at_clip_layer - 1),)
