"""How much accelerator memory a training run needs, and a plan that fits (the ``paper`` scale).

Per device, for a model of P parameters of which T train (all of them, or LoRA's few):

    weights      P x bytes of the stored weights (fp32: 4; bf16 weights: 2)
    gradients    T x the same bytes
    optimiser    AdamW's two moments: T x 2 x the same bytes (fp32 master weights add T x 4 when the
                 weights are bf16 and the optimiser keeps fp32 copies; not counted: trl and the
                 course's loop keep the moments in the weights' dtype)
    activations  per layer and token, about h x (34 + 5 a s / h) bytes at 16 bits (Korthikanti et
                 al., 2022, for a transformer layer without recomputation), scaled to the compute
                 dtype; with activation checkpointing, 2 x h bytes per layer and token (each layer's
                 input) plus one layer's full activations; and the logits, tokens x vocab x 4 bytes

FSDP full-shard divides weights, gradients and optimiser state by the number of devices; DDP
replicates them. Activations depend on the batch per device, never on the device count. The
estimate is a lower bound of what a framework allocates (buffers, fragmentation, the CUDA
context): :func:`plan` keeps a 20% margin.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3


@dataclass(frozen=True)
class Shape:
    """What the estimate needs of a model: parameters (millions), layers, hidden size, heads."""

    params_m: float
    layers: int
    hidden: int
    heads: int
    vocab: int = 0             # the logits [batch, seq, vocab] in fp32 count among the activations

    @staticmethod
    def of(config) -> "Shape":
        """From a transformers config (GPT-2, OPT, Llama/Mistral/Qwen field names)."""
        get = lambda *names: next(getattr(config, n) for n in names if getattr(config, n, None) is not None)
        layers = get("num_hidden_layers", "n_layer")
        hidden = get("hidden_size", "n_embd")
        heads = get("num_attention_heads", "n_head")
        vocab = get("vocab_size")
        inner = getattr(config, "intermediate_size", None) or getattr(config, "ffn_dim", None) \
            or getattr(config, "n_inner", None) or 4 * hidden
        mlp = 3 if getattr(config, "hidden_act", "") == "silu" else 2        # gated MLPs (Llama, Mistral, Qwen)
        kv = getattr(config, "num_key_value_heads", None) or heads           # grouped-query attention
        attention = 2 * hidden * hidden + 2 * hidden * (hidden * kv // heads)
        embeddings = vocab * hidden * (1 if getattr(config, "tie_word_embeddings", True) else 2)
        params = layers * (attention + mlp * hidden * inner) + embeddings    # biases and norms left out
        return Shape(params / 1e6, layers, hidden, heads, vocab)


SHAPES = {   # the paper's models (published configurations)
    "gpt2": Shape(124, 12, 768, 12, 50257), "gpt2-medium": Shape(355, 24, 1024, 16, 50257),
    "gpt2-large": Shape(774, 36, 1280, 20, 50257), "gpt2-xl": Shape(1558, 48, 1600, 25, 50257),
    "opt-125m": Shape(125, 12, 768, 12, 50272), "opt-350m": Shape(331, 24, 1024, 16, 50272),
    "opt-1.3b": Shape(1316, 24, 2048, 32, 50272), "opt-2.7b": Shape(2652, 32, 2560, 32, 50272),
    "opt-6.7b": Shape(6658, 32, 4096, 32, 50272), "mistral-7b": Shape(7242, 32, 4096, 32, 32000),
}


def estimate(shape: Shape, batch: int, seq_len: int, weight_bytes: int = 4, trainable_m: float | None = None,
             checkpointing: bool = False, devices: int = 1, shard: bool = False) -> dict[str, float]:
    """GiB per device: weights, gradients, optimiser, activations and total.

    batch:        sequences per device per step (a preference pair is two sequences)
    weight_bytes: 4 (fp32) or 2 (bf16 weights; compute in the same dtype)
    trainable_m:  trained parameters in millions (None: every weight; LoRA: its adapters)
    shard:        FSDP full-shard over ``devices`` (weights, gradients and optimiser state divided)
    """
    p = shape.params_m * 1e6
    t = p if trainable_m is None else trainable_m * 1e6
    share = devices if shard else 1
    weights = p * weight_bytes / share
    grads = t * weight_bytes / share
    optim = 2 * t * weight_bytes / share
    tokens = batch * seq_len
    full_layer = tokens * shape.hidden * (34 + 5 * shape.heads * seq_len / shape.hidden) * weight_bytes / 2
    if checkpointing:
        acts = shape.layers * tokens * shape.hidden * weight_bytes + full_layer
    else:
        acts = shape.layers * full_layer
    acts += tokens * shape.vocab * 4                      # the logits, upcast to fp32 for the loss
    out = {"weights": weights, "gradients": grads, "optimiser": optim, "activations": acts}
    out = {k: v / GIB for k, v in out.items()}
    out["total"] = sum(out.values())
    return out


def lora_trainable_m(shape: Shape, rank: int = 16, targets_per_layer: int = 4) -> float:
    """Millions of LoRA parameters: rank x (in + out) per adapted square projection."""
    return shape.layers * targets_per_layer * rank * 2 * shape.hidden / 1e6


def plan(shape: Shape, gpu_gib: float, gpus: int, batch: int, seq_len: int, weight_bytes: int = 2,
         margin: float = 0.2, shard: bool = True) -> tuple[str, dict[str, float]]:
    """The first plan whose estimate fits ``gpu_gib`` with ``margin`` to spare, in this order: one
    GPU; one GPU with activation checkpointing; FSDP full-shard over ``gpus`` (with checkpointing;
    only with ``shard``: policy jobs do not run under FSDP); LoRA (rank 16) on one GPU with
    checkpointing. Returns (the plan in words, its estimate); ("does not fit", the last estimate)
    when none does."""
    budget = gpu_gib * (1 - margin)
    candidates = [("one GPU, every weight", dict(checkpointing=False)),
                  ("one GPU, every weight, activation checkpointing", dict(checkpointing=True))]
    if gpus > 1 and shard:
        candidates.append((f"FSDP full-shard over {gpus} GPUs, every weight, activation checkpointing",
                           dict(checkpointing=True, devices=gpus, shard=True)))
    candidates.append(("LoRA rank 16 on one GPU, activation checkpointing",
                       dict(checkpointing=True, trainable_m=lora_trainable_m(shape))))
    est = {}
    for words, kw in candidates:
        est = estimate(shape, batch, seq_len, weight_bytes, **kw)
        if est["total"] <= budget:
            return words, est
    return "does not fit", est


def describe(name: str, est: dict[str, float]) -> str:
    """One line: the model and its estimate per device, in GiB."""
    parts = ", ".join(f"{k} {v:.1f}" for k, v in est.items() if k != "total")
    return f"{name}: {est['total']:.1f} GiB per device ({parts})"


def announce(name: str, config, batch: int, seq_len: int, weight_bytes: int = 4, shard: bool = True) -> str:
    """The line printed before a run on a GPU: the estimate per device and the plan that fits this
    machine's GPUs (their memory and count, read from torch; ``shard=False``: no FSDP plan)."""
    import torch

    shape = Shape.of(config)
    est = estimate(shape, batch, seq_len, weight_bytes)
    if not torch.cuda.is_available():
        return describe(name, est) + " (no GPU visible: no plan)"
    gib = torch.cuda.get_device_properties(0).total_memory / GIB
    words, _ = plan(shape, gib, torch.cuda.device_count(), batch, seq_len, weight_bytes, shard=shard)
    return describe(name, est) + f"; on {torch.cuda.device_count()} x {gib:.0f} GiB: {words}"
