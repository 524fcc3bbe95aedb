#!/usr/bin/env python3
"""Reference fixtures for the fine-tuning heads: span QA (HF BertForQuestionAnswering) and sequence classification
(HF BertForSequenceClassification), and a check that checkpoints we save load in transformers.

Writes Tests/Fixtures/heads/<task>/ for task in qa, classification:
  config.json, model.safetensors  written by transformers' save_pretrained (an HF-saved task checkpoint)
  io.safetensors     inputs (I32) and expected outputs (F32)
  grads.safetensors  d(loss)/d(param) for every tensor of model.safetensors, same names

The model is the core fixture's tiny config (vocab 1001, hidden 64, 2 layers, 4 heads, intermediate 256,
dropout 0, eager attention, fp32) with large seeded weights, the same batch shape (3 × 32, real lengths 32, 20, 9).
  qa:             qa_outputs [2, 64] on the sequence output (no pooler: HF builds BertModel without one);
                  start/end positions [3]; row 1's answer is outside its window, so both positions are 0 ([CLS]).
                  loss = (CE(start_logits, start) + CE(end_logits, end)) / 2, as HF computes it.
  classification: pooler → dropout → classifier [3, 64]; labels [3] over 3 classes; loss = mean CE.

Run from the repository root:
    .venv-ref/bin/python scripts/reference/heads.py
Check directories written by our `save(directory:)` (HF class from config.json's `architectures`; no missing,
unexpected or mis-shaped keys; with --io, the logits and loss on a fixture's inputs must match its outputs):
    .venv-ref/bin/python scripts/reference/heads.py --check DIR [--io Tests/Fixtures/heads/qa/io.safetensors]
Needs torch, transformers, safetensors.
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification
from transformers.utils import logging as hf_logging

from bert_core import B, ROW_LENGTHS, S, SECOND_SEGMENT_START, SEED, fill_row, init_weights, make_config

LABELS = 3
CLASS_LABELS = [2, 0, 1]
# Row 0: an answer in the second segment; row 1: the answer is outside this window → position 0 ([CLS]), as
# run_squad.py labels such features; row 2: a one-token answer.
START_POSITIONS = [17, 0, 6]
END_POSITIONS = [21, 0, 6]
CLASSES = {"BertForQuestionAnswering": BertForQuestionAnswering,
           "BertForSequenceClassification": BertForSequenceClassification}
TASKS = {"qa": "BertForQuestionAnswering", "classification": "BertForSequenceClassification"}


def analytically_zero(task, name):
    """Gradients that are zero in exact arithmetic, so their stored values are fp32 rounding noise (compare them with
    an absolute tolerance): the key bias (softmax ignores a per-row shift) and, for QA, everything that shifts all of
    a row's start or end logits alike: qa_outputs.bias and the last layer's output LayerNorm bias."""
    last = f"bert.encoder.layer.{make_config('gelu')['num_hidden_layers'] - 1}.output.LayerNorm.bias"
    return name.endswith("attention.self.key.bias") or (task == "qa" and name in ("qa_outputs.bias", last))


def make_task_config(task):
    cfg = make_config("gelu")
    cfg["architectures"] = [TASKS[task]]
    if task == "classification":
        cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(LABELS)}
        cfg["label2id"] = {f"LABEL_{i}": i for i in range(LABELS)}
    return BertConfig(**cfg)


def make_inputs(gen, vocab_size):
    input_ids = torch.zeros(B, S, dtype=torch.int64)
    segment_ids = torch.zeros(B, S, dtype=torch.int64)
    input_mask = torch.zeros(B, S, dtype=torch.int64)
    for b, (n, s2) in enumerate(zip(ROW_LENGTHS, SECOND_SEGMENT_START)):
        fill_row(input_ids, segment_ids, input_mask, b, torch.randint(5, vocab_size, (n,), generator=gen), n, s2)
    return {"input_ids": input_ids, "segment_ids": segment_ids, "input_mask": input_mask,
            "start_positions": torch.tensor(START_POSITIONS), "end_positions": torch.tensor(END_POSITIONS),
            "labels": torch.tensor(CLASS_LABELS)}


def forward(model, inputs):
    """HF's forward with targets; returns the outputs to store, each checked against a loss computed here."""
    common = dict(input_ids=inputs["input_ids"], token_type_ids=inputs["segment_ids"],
                  attention_mask=inputs["input_mask"], output_hidden_states=True, return_dict=True)
    if isinstance(model, BertForQuestionAnswering):
        out = model(**common, start_positions=inputs["start_positions"], end_positions=inputs["end_positions"])
        loss = (F.cross_entropy(out.start_logits, inputs["start_positions"])
                + F.cross_entropy(out.end_logits, inputs["end_positions"])) / 2
        outs = {"start_logits": out.start_logits, "end_logits": out.end_logits}
    else:
        out = model(**common, labels=inputs["labels"])
        assert model.config.problem_type == "single_label_classification"
        loss = F.cross_entropy(out.logits, inputs["labels"])
        outs = {"logits": out.logits, "pooled_output": model.bert.pooler(out.hidden_states[-1])}
    assert torch.allclose(out.loss, loss, rtol=1e-6, atol=1e-6), (out.loss.item(), loss.item())
    outs["sequence_output"] = out.hidden_states[-1]
    outs["loss"] = out.loss.reshape(1)
    return outs


def load_clean(directory, dtype=torch.float32):
    """from_pretrained with the class named in config.json; fails unless every key matched exactly."""
    with open(os.path.join(directory, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    model, info = CLASSES[arch].from_pretrained(directory, attn_implementation="eager", dtype=dtype,
                                                output_loading_info=True)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not bad, f"{directory}: {bad}"
    return model.eval()


def run_task(task, out_root):
    d = os.path.join(out_root, task)
    os.makedirs(d, exist_ok=True)
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    builder = CLASSES[TASKS[task]](make_task_config(task)).float()
    init_weights(dict(builder.named_parameters()), gen)
    builder.save_pretrained(d, safe_serialization=True)
    weights = {k: v.detach().clone() for k, v in builder.named_parameters()}
    del builder

    model = load_clean(d)
    params = dict(model.named_parameters())
    assert sorted(params) == sorted(weights) == sorted(load_file(os.path.join(d, "model.safetensors")))
    assert all(torch.equal(params[k].detach(), v) for k, v in weights.items())
    assert not any(k.startswith("bert.pooler") for k in params) or task == "classification"

    inputs = make_inputs(gen, model.config.vocab_size)
    model.zero_grad(set_to_none=True)
    outs = forward(model, inputs)
    outs["loss"].sum().backward()
    grads = {k: p.grad.detach().clone().contiguous() for k, p in sorted(params.items())}
    assert all(torch.isfinite(g).all() for g in grads.values())
    io = {k: v.to(torch.int32).contiguous() for k, v in inputs.items()
          if k in ("input_ids", "segment_ids", "input_mask")
          or (task == "qa") == (k in ("start_positions", "end_positions"))}
    io.update({k: v.detach().float().contiguous() for k, v in outs.items()})
    save_file(io, os.path.join(d, "io.safetensors"), metadata={"format": "pt"})
    save_file(grads, os.path.join(d, "grads.safetensors"), metadata={"format": "pt"})

    # fp32 against float64: how far the fixture itself is from exact.
    model64 = load_clean(d, dtype=torch.float64)
    outs64 = forward(model64, inputs)
    outs64["loss"].sum().backward()
    p64 = dict(model64.named_parameters())
    print(f"{task}: loss {outs['loss'].item():.6f}; {len(grads)} tensors")
    for k in outs:
        diff = (outs[k].double() - outs64[k].detach()).abs().max().item()
        print(f"  {k:16s} max|fp32-fp64| {diff:.2e}   max|x| {outs[k].abs().max().item():.3e}")
    worst = max(((grads[k].double() - p64[k].grad).abs().max().item() / p64[k].grad.abs().max().item(), k)
                for k in grads if not analytically_zero(task, k))
    noise = max(grads[k].abs().max().item() for k in grads if analytically_zero(task, k))
    print(f"  grads: worst max|fp32-fp64| / max|g| {worst[0]:.2e} ({worst[1]}); analytically zero ones max|g| {noise:.1e}")
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"  wrote {d} ({size / 1e6:.2f} MB)")


def check(directory, io_path):
    """Loads one of our saved directories in transformers; with io_path, compares outputs with a fixture's."""
    model = load_clean(directory)
    line = f"{directory}: {type(model).__name__} loads with no missing, unexpected or mis-shaped keys"
    if isinstance(model, BertForSequenceClassification):
        line += f"; num_labels {model.config.num_labels}, problem_type {model.config.problem_type}"
    if io_path:
        io = {k: v.long() if v.dtype == torch.int32 else v for k, v in load_file(io_path).items()}
        with torch.no_grad():
            outs = forward(model, {**io, "start_positions": io.get("start_positions"),
                                   "end_positions": io.get("end_positions"), "labels": io.get("labels")})
        worst = max((outs[k] - io[k]).abs().max().item() / io[k].abs().max().item() for k in outs if k in io)
        assert worst <= 1e-5, f"{directory}: outputs differ from {io_path} by {worst:.2e} (relative)"
        line += f"; outputs match {io_path} (worst relative error {worst:.1e})"
    print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "Tests", "Fixtures", "heads"))
    ap.add_argument("--check", metavar="DIR", help="a checkpoint directory we saved, to load in transformers")
    ap.add_argument("--io", help="with --check: a fixture io.safetensors whose outputs the checkpoint must give")
    args = ap.parse_args()
    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    if args.check:
        check(args.check, args.io)
        return
    for task in TASKS:
        run_task(task, os.path.normpath(args.out))


if __name__ == "__main__":
    sys.exit(main())
