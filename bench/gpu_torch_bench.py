#!/usr/bin/env python3
"""PyTorch's side of the GPU throughput comparison: one BERT pre-training step (forward + backward of MLM + NSP with
the MLM head on the masked positions only, as NVIDIA runs it, + a fused AdamW update; PyTorch has no LAMB) in bf16
autocast with SDPA attention, eager and `torch.compile`d, on synthetic full-length batches. Prints one JSON line per
mode: seq/s over the timed steps (median step), peak memory.

    python3 bench/gpu_torch_bench.py --model bert-large --seq-len 128 --batch 64 --steps 20 --warmup 5
    python3 bench/gpu_torch_bench.py --model bert-tiny --device cpu --steps 2 --warmup 1   # a smoke test without a GPU
"""
import argparse
import json
import statistics
import time

import torch
from transformers import BertConfig, BertForPreTraining

# name: (layers, hidden, heads), intermediate 4·hidden, vocabulary 30522 (as `bert bench`'s presets).
PRESETS = {"bert-tiny": (2, 128, 2), "bert-mini": (4, 256, 4), "bert-base": (12, 768, 12), "bert-large": (24, 1024, 16)}


def step_fn(model, optimizer, device):
    def step(ids, segments, positions, labels, nsp):
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = model.bert(input_ids=ids, token_type_ids=segments)
            seq, pooled = out.last_hidden_state, out.pooler_output
            gathered = torch.gather(seq, 1, positions.unsqueeze(-1).expand(-1, -1, seq.size(-1)))
            mlm = model.cls.predictions(gathered)
            nsp_logits = model.cls.seq_relationship(pooled)
            loss = torch.nn.functional.cross_entropy(mlm.flatten(0, 1).float(), labels.flatten()) \
                + torch.nn.functional.cross_entropy(nsp_logits.float(), nsp)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss
    return step


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="bert-large", choices=sorted(PRESETS))
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--predictions", type=int, default=None, help="masked positions per sequence (20 up to 128, else 80)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda")
    p.add_argument("--modes", default="eager,compile")
    a = p.parse_args()
    layers, hidden, heads = PRESETS[a.model]
    P = a.predictions or (20 if a.seq_len <= 128 else 80)
    config = BertConfig(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                        intermediate_size=4 * hidden, attn_implementation="sdpa")
    g = torch.Generator().manual_seed(1)
    B, S = a.batch, a.seq_len
    ids = torch.randint(0, config.vocab_size, (B, S), generator=g).to(a.device)
    segments = (torch.arange(S) >= S // 2).long().expand(B, S).contiguous().to(a.device)
    positions = torch.stack([torch.randperm(S - 1, generator=g)[:P] + 1 for _ in range(B)]).to(a.device)
    labels = torch.randint(0, config.vocab_size, (B, P), generator=g).to(a.device)
    nsp = torch.randint(0, 2, (B,), generator=g).to(a.device)
    for mode in a.modes.split(","):
        torch.manual_seed(0)
        model = BertForPreTraining(config).to(a.device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=a.device == "cuda")
        step = step_fn(model, optimizer, a.device)
        if mode == "compile":
            step = torch.compile(step)
        if a.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(a.warmup + a.steps):
            start = time.perf_counter()
            loss = step(ids, segments, positions, labels, nsp)
            if a.device == "cuda":
                torch.cuda.synchronize()
            if i >= a.warmup:
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(json.dumps({"system": "pytorch", "mode": mode, "model": a.model, "batch": B, "seq_len": S, "precision": "bf16",
                          "optimizer": "adamw-fused" if a.device == "cuda" else "adamw", "seq_per_s": B / median, "step_ms": median * 1000,
                          "loss": float(loss.detach()), "device": torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
                          "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if a.device == "cuda" else None,
                          "torch": torch.__version__}, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
