#!/usr/bin/env python3
"""Reference fixture for packed pre-training rows (MLPerf's layout) read by BertForPreTraining.

Writes Tests/Fixtures/packed/io.safetensors (about 100 KB): a packed batch, the outputs transformers computes for it and
the gradients of a few tensors. The model is the core fixture's tiny-gelu (Tests/Fixtures/core/tiny-gelu, written by
bert_core.py), read from there by both sides, so no weights are stored twice.

The batch: B 2 rows of S 32, N 3 sequences a row at most, P 8 masked positions a row.
  row 0: sequences of 12, 11 and 7 tokens, then 2 padded;  row 1: 14 and 10 tokens, then 8 padded (slot 2 empty).
  input_mask  [B, S]  0 padding, else the 1-based sequence index within the row
  positions   [B, S]  position ids restarting at 0 at each sequence's [CLS] (HF's position_ids)
  next_sentence_positions / labels / weights [B, N]: each sequence's [CLS] position, its label, 1 (0 for empty slots)
What transformers is given: position_ids, and an additive 4-D mask [B, 1, S, S] (transformers 5 takes a prepared 4-D
mask as is) built from the rule the model implements: key j is visible to query i iff input_mask[j] != 0 and
(input_mask[i] == 0 or input_mask[j] == input_mask[i]). Blocked entries get float32's lowest value, not our −10000.
Outputs:
  sequence_output [B, S, H]; mlm_logits [M, V] at the masked positions (row-major); pooled_output [Q, H] and
  nsp_logits [Q, 2] at each weighted slot's [CLS] (the pooler dense + tanh, then seq_relationship, as HF's pooler
  does at position 0); mlm_loss = mean CE over the M masked positions; nsp_loss = mean CE over the Q sequences;
  loss = their sum; grad.<name> d(loss)/d(param) for a few tensors.
The script also checks what packing must not change: each sequence run alone through HF (unpacked, 2-D mask, no
position ids) gives the same sequence output at its tokens and the same NSP logits.

Run from the repository root:
    /work/venv-ref/bin/python scripts/reference/packed_attention.py
Needs torch, transformers, safetensors.
"""

import argparse
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import BertForPreTraining
from transformers.utils import logging as hf_logging

SEED = 4321
B, S, N, P = 2, 32, 3, 8
LENGTHS = [[12, 11, 7], [14, 10]]
MASKED_PER_SEQUENCE = [[2, 2, 1], [2, 1]]
NSP_LABELS = [[0, 1, 1], [1, 0]]
CLS_ID, SEP_ID, MASK_ID = 2, 3, 4
GRADS = ["bert.embeddings.position_embeddings.weight", "bert.embeddings.token_type_embeddings.weight",
         "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.1.output.LayerNorm.weight",
         "bert.pooler.dense.weight", "cls.seq_relationship.weight"]


def make_batch(gen, vocab_size):
    t = {k: torch.zeros(B, S, dtype=torch.int64) for k in ("input_ids", "segment_ids", "input_mask", "positions")}
    t.update({k: torch.zeros(B, P, dtype=torch.int64) for k in ("masked_lm_positions", "masked_lm_ids")})
    t.update({k: torch.zeros(B, N, dtype=torch.int64)
              for k in ("next_sentence_positions", "next_sentence_labels", "next_sentence_weights")})
    for b, lengths in enumerate(LENGTHS):
        start, masked = 0, []
        for n, length in enumerate(lengths):
            toks = torch.randint(5, vocab_size, (length,), generator=gen)
            second = 1 + (length - 1) // 2  # the second segment starts after the first [SEP]
            toks[0], toks[second - 1], toks[length - 1] = CLS_ID, SEP_ID, SEP_ID
            span = slice(start, start + length)
            t["input_ids"][b, span] = toks
            t["input_mask"][b, span] = n + 1
            t["positions"][b, span] = torch.arange(length)
            t["segment_ids"][b, start + second:start + length] = 1
            t["next_sentence_positions"][b, n] = start
            t["next_sentence_labels"][b, n] = NSP_LABELS[b][n]
            t["next_sentence_weights"][b, n] = 1
            cand = [start + i for i in range(1, length) if i not in (second - 1, length - 1)]
            pick = torch.randperm(len(cand), generator=gen)[:MASKED_PER_SEQUENCE[b][n]]
            masked += [cand[i] for i in pick.tolist()]
            start += length
        for j, i in enumerate(sorted(masked)):
            t["masked_lm_positions"][b, j] = i
            t["masked_lm_ids"][b, j] = t["input_ids"][b, i]
            t["input_ids"][b, i] = MASK_ID
    return t


def block_diagonal_mask(input_mask):
    """[B, 1, S, S] additive: 0 where key j is visible to query i, float32's lowest value elsewhere."""
    q, k = input_mask[:, :, None], input_mask[:, None, :]
    visible = (k != 0) & ((q == 0) | (k == q))
    return torch.where(visible, 0.0, torch.finfo(torch.float32).min)[:, None, :, :]


def heads_at(model, seq, t):
    """MLM logits at the masked positions and pooled output and NSP logits at the weighted [CLS] positions."""
    mb, mp = (t["masked_lm_positions"] != 0).nonzero(as_tuple=True)
    rows, cols = mb, t["masked_lm_positions"][mb, mp]
    labels = t["masked_lm_ids"][mb, mp]
    mlm_logits = model.cls.predictions(seq[rows, cols])
    sb, sn = (t["next_sentence_weights"] != 0).nonzero(as_tuple=True)
    pooled = model.bert.pooler.activation(model.bert.pooler.dense(seq[sb, t["next_sentence_positions"][sb, sn]]))
    nsp_logits = model.cls.seq_relationship(pooled)
    return mlm_logits, labels, pooled, nsp_logits, t["next_sentence_labels"][sb, sn]


def forward(model, t):
    out = model.bert(input_ids=t["input_ids"], token_type_ids=t["segment_ids"], position_ids=t["positions"],
                     attention_mask=block_diagonal_mask(t["input_mask"]), return_dict=True)
    seq = out.last_hidden_state
    mlm_logits, labels, pooled, nsp_logits, nsp_labels = heads_at(model, seq, t)
    mlm_loss = F.cross_entropy(mlm_logits, labels)
    nsp_loss = F.cross_entropy(nsp_logits, nsp_labels)
    return {"sequence_output": seq, "mlm_logits": mlm_logits, "pooled_output": pooled, "nsp_logits": nsp_logits,
            "mlm_loss": mlm_loss.reshape(1), "nsp_loss": nsp_loss.reshape(1), "loss": (mlm_loss + nsp_loss).reshape(1)}


def check_against_unpacked(model, t, outs):
    """Each sequence alone, unpacked: the same outputs at its tokens and the same NSP logits."""
    q = 0
    for b, lengths in enumerate(LENGTHS):
        start = 0
        for length in lengths:
            span = slice(start, start + length)
            alone = model.bert(input_ids=t["input_ids"][b:b + 1, span], token_type_ids=t["segment_ids"][b:b + 1, span],
                               return_dict=True)
            assert torch.allclose(alone.last_hidden_state[0], outs["sequence_output"][b, span], atol=2e-5), (b, start)
            nsp = model.cls.seq_relationship(alone.pooler_output)[0]
            assert torch.allclose(nsp, outs["nsp_logits"][q], atol=2e-5), (b, start)
            start, q = start + length, q + 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="Tests/Fixtures/core/tiny-gelu")
    parser.add_argument("--out", default="Tests/Fixtures/packed")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    torch.manual_seed(SEED)
    model = BertForPreTraining.from_pretrained(args.model, attn_implementation="eager", dtype=torch.float32).eval()
    t = make_batch(torch.Generator().manual_seed(SEED), model.config.vocab_size)

    outs = forward(model, t)
    with torch.no_grad():
        check_against_unpacked(model, t, outs)
    model.zero_grad(set_to_none=True)
    outs["loss"].sum().backward()
    params = dict(model.named_parameters())
    tensors = {k: v.to(torch.int32).contiguous() for k, v in t.items()}
    tensors.update({k: v.detach().float().contiguous() for k, v in outs.items()})
    tensors.update({"grad." + k: params[k].grad.detach().contiguous() for k in GRADS})
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, "io.safetensors"), metadata={"format": "pt"})
    print(f"loss {outs['loss'].item():.6f} (mlm {outs['mlm_loss'].item():.6f} over {outs['mlm_logits'].shape[0]} "
          f"positions, nsp {outs['nsp_loss'].item():.6f} over {outs['nsp_logits'].shape[0]} sequences)")


if __name__ == "__main__":
    main()
