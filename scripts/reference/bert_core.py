#!/usr/bin/env python3
"""Reference fixtures for the BERT core (encoder, pooler, MLM + NSP heads, loss, gradients).

Writes, for each variant, Tests/Fixtures/core/<variant>/:
  config.json        HF BertConfig keys of a tiny model (vocab 1001, hidden 64, 2 layers, 4 heads)
  model.safetensors  fp32 parameters of transformers.BertForPreTraining, HF names, without the tied
                     duplicates cls.predictions.decoder.{weight,bias} and without buffers
  io.safetensors     inputs (I32, NVIDIA shard names) and expected outputs (F32)
  grads.safetensors  d(loss)/d(param) for every tensor of model.safetensors, same names

Variants: tiny-gelu (hidden_act "gelu", exact erf) and tiny-gelu-new ("gelu_new", tanh form).

Loss: mlm_loss = mean cross-entropy over the M real masked positions (rows in row-major order);
nsp_loss = mean cross-entropy over the batch; loss = mlm_loss + nsp_loss. This equals HF's
BertForPreTraining loss with labels = -100 everywhere except at the masked positions (checked below).

Run from the repository root:
    .venv-ref/bin/python scripts/reference/bert_core.py
(optionally --out DIR). Needs torch, transformers, safetensors.
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForPreTraining
from transformers.utils import logging as hf_logging

SEED = 1234
VARIANTS = {"tiny-gelu": "gelu", "tiny-gelu-new": "gelu_new"}

B, S, P = 3, 32, 6
ROW_LENGTHS = [32, 20, 9]
# Where the second segment starts (the token after the first [SEP]) in each row.
SECOND_SEGMENT_START = [14, 12, 5]
MASKED_COUNTS = [6, 3, 1]
NSP_LABELS = [0, 1, 1]
CLS_ID, SEP_ID, MASK_ID = 2, 3, 4  # arbitrary ids of the tiny vocabulary; 0 is padding


def make_config(hidden_act):
    return {
        "architectures": ["BertForPreTraining"],
        "attention_probs_dropout_prob": 0.0,
        "hidden_act": hidden_act,
        "hidden_dropout_prob": 0.0,
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 256,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "model_type": "bert",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "type_vocab_size": 2,
        "vocab_size": 1001,
    }


def parameters(model):
    """Named parameters without tied duplicates (named_parameters de-duplicates shared tensors, so the
    decoder weight/bias appear only as word_embeddings.weight / cls.predictions.bias) and without buffers."""
    params = dict(model.named_parameters())
    assert "cls.predictions.decoder.weight" not in params and "cls.predictions.decoder.bias" not in params
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    return params


def init_weights(params, gen):
    """Large, seeded weights so that every path carries signal (not the tiny default init). `params`: name → tensor."""
    with torch.no_grad():
        for name, p in sorted(params.items()):
            if "LayerNorm.weight" in name:
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=gen)
            elif name.endswith("bias"):  # includes cls.predictions.bias
                v = 0.05 * torch.randn(p.shape, generator=gen)
            elif "embeddings" in name:
                v = 0.2 * torch.randn(p.shape, generator=gen)
            else:  # Linear weights [out, in]
                v = 0.15 * torch.randn(p.shape, generator=gen)
            p.copy_(v)


def fill_row(input_ids, segment_ids, input_mask, b, toks, n, s2):
    """Row b: [CLS] first, [SEP] before the second segment (from s2) and last, n real tokens, then padding."""
    toks[0] = CLS_ID
    toks[s2 - 1] = SEP_ID
    toks[n - 1] = SEP_ID
    input_ids[b, :n] = toks
    input_mask[b, :n] = 1
    segment_ids[b, s2:n] = 1


def make_inputs(gen, vocab_size):
    input_ids = torch.zeros(B, S, dtype=torch.int64)
    segment_ids = torch.zeros(B, S, dtype=torch.int64)
    input_mask = torch.zeros(B, S, dtype=torch.int64)
    positions = torch.zeros(B, P, dtype=torch.int64)
    masked_ids = torch.zeros(B, P, dtype=torch.int64)
    for b, (n, s2, m) in enumerate(zip(ROW_LENGTHS, SECOND_SEGMENT_START, MASKED_COUNTS)):
        fill_row(input_ids, segment_ids, input_mask, b, torch.randint(5, vocab_size, (n,), generator=gen), n, s2)
        # Candidate positions: real tokens that are not [CLS]/[SEP] (never 0, within the real length).
        cand = [i for i in range(1, n) if i not in (s2 - 1, n - 1)]
        pick = torch.randperm(len(cand), generator=gen)[:m]
        pos = sorted(cand[i] for i in pick.tolist())
        for j, i in enumerate(pos):
            positions[b, j] = i
            masked_ids[b, j] = input_ids[b, i]
            input_ids[b, i] = MASK_ID  # the model sees [MASK]; the label is the original token
    nsp = torch.tensor(NSP_LABELS, dtype=torch.int64)
    return input_ids, segment_ids, input_mask, positions, masked_ids, nsp


def real_masked(positions, masked_ids):
    """(row, position, label) triples of the real masked positions, row-major; a row's list ends at the
    first 0 position, as NVIDIA's loader reads it."""
    out = []
    for b in range(positions.shape[0]):
        for j in range(positions.shape[1]):
            p = int(positions[b, j])
            if p == 0:
                break
            out.append((b, p, int(masked_ids[b, j])))
    return out


def forward(model, inputs):
    input_ids, segment_ids, input_mask, positions, masked_ids, nsp = inputs
    out = model(
        input_ids=input_ids,
        token_type_ids=segment_ids,
        attention_mask=input_mask,
        output_hidden_states=True,
        return_dict=True,
    )
    seq = out.hidden_states[-1]
    pooled = model.bert.pooler(seq)
    trip = real_masked(positions, masked_ids)
    rows = torch.tensor([t[0] for t in trip])
    cols = torch.tensor([t[1] for t in trip])
    labels = torch.tensor([t[2] for t in trip])
    mlm_logits = out.prediction_logits[rows, cols]  # [M, V]
    nsp_logits = out.seq_relationship_logits  # [B, 2]
    mlm_loss = F.cross_entropy(mlm_logits, labels)
    nsp_loss = F.cross_entropy(nsp_logits, nsp)
    loss = mlm_loss + nsp_loss

    # Cross-check against HF's own loss with labels -100 outside the masked positions.
    hf_labels = torch.full_like(input_ids, -100)
    hf_labels[rows, cols] = labels
    hf = model(
        input_ids=input_ids,
        token_type_ids=segment_ids,
        attention_mask=input_mask,
        labels=hf_labels,
        next_sentence_label=nsp,
        return_dict=True,
    )
    assert torch.allclose(hf.loss, loss, rtol=1e-6, atol=1e-6), (hf.loss.item(), loss.item())
    return {
        "sequence_output": seq,
        "pooled_output": pooled,
        "mlm_logits": mlm_logits,
        "nsp_logits": nsp_logits,
        "mlm_loss": mlm_loss.reshape(1),
        "nsp_loss": nsp_loss.reshape(1),
        "loss": loss.reshape(1),
    }


def run_variant(variant, hidden_act, out_root):
    d = os.path.join(out_root, variant)
    os.makedirs(d, exist_ok=True)
    cfg = make_config(hidden_act)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")

    # Same seed for both variants: identical weights and inputs, only the activation differs.
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    builder = BertForPreTraining(BertConfig(**cfg)).float()
    init_weights(parameters(builder), gen)
    weights = {k: v.detach().clone().contiguous() for k, v in sorted(parameters(builder).items())}
    save_file(weights, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    del builder

    # Load back through HF (this also re-ties the decoder to the word embeddings).
    model = BertForPreTraining.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    model.eval()  # dropout probabilities are 0 anyway
    loaded = parameters(model)
    assert sorted(loaded) == sorted(weights), set(loaded) ^ set(weights)
    for k, v in weights.items():
        assert torch.equal(loaded[k].detach(), v), k
    assert model.config._attn_implementation == "eager"
    assert model.config.hidden_act == hidden_act

    inputs = make_inputs(gen, cfg["vocab_size"])
    model.zero_grad(set_to_none=True)
    outs = forward(model, inputs)
    outs["loss"].sum().backward()
    grads = {k: p.grad.detach().clone().contiguous() for k, p in sorted(loaded.items())}
    assert all(torch.isfinite(g).all() and g.abs().max() > 0 for g in grads.values())

    names = ["input_ids", "segment_ids", "input_mask", "masked_lm_positions", "masked_lm_ids", "next_sentence_labels"]
    io = {n: t.to(torch.int32).contiguous() for n, t in zip(names, inputs)}
    io.update({k: v.detach().float().contiguous() for k, v in outs.items()})
    save_file(io, os.path.join(d, "io.safetensors"), metadata={"format": "pt"})
    save_file(grads, os.path.join(d, "grads.safetensors"), metadata={"format": "pt"})

    # Round-trip check and a float64 re-run to show how far fp32 itself is from exact.
    io_back = load_file(os.path.join(d, "io.safetensors"))
    assert all(torch.equal(io_back[k], io[k]) for k in io)
    model64 = BertForPreTraining.from_pretrained(d, attn_implementation="eager", dtype=torch.float64).eval()
    p64 = parameters(model64)
    outs64 = forward(model64, inputs)
    outs64["loss"].sum().backward()
    print(f"{variant}: loss {outs['loss'].item():.6f} (mlm {outs['mlm_loss'].item():.6f}, "
          f"nsp {outs['nsp_loss'].item():.6f}); M = {outs['mlm_logits'].shape[0]}")
    for k in outs:
        diff = (outs[k].double() - outs64[k].detach()).abs().max().item()
        print(f"  {k:16s} max|fp32-fp64| {diff:.2e}   max|x| {outs[k].abs().max().item():.3e}")
    # attention.self.key.bias has an analytically zero gradient (softmax is shift-invariant per query row):
    # its stored values are fp32 rounding noise (~1e-8) and must be compared with an absolute tolerance.
    worst = max(((grads[k].double() - p64[k].grad).abs().max().item() / p64[k].grad.abs().max().item(), k)
                for k in grads if not k.endswith("attention.self.key.bias"))
    print(f"  grads: worst max|fp32-fp64| / max|g| {worst[0]:.2e} ({worst[1]}); "
          f"key.bias max|g| {max(grads[k].abs().max().item() for k in grads if k.endswith('key.bias')):.1e}")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"  wrote {d} ({size / 1e6:.2f} MB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "Tests", "Fixtures", "core"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    for variant, act in VARIANTS.items():
        run_variant(variant, act, os.path.normpath(args.out))


if __name__ == "__main__":
    sys.exit(main())
