#!/usr/bin/env python3
"""Compare one `bert bench` training step of ours with PyTorch on the same config, batch, sequence length
and thread count.

A training step is forward + backward of the pre-training loss (MLM + NSP), plus with --optimizer lamb the
LAMB update (apex semantics on both sides). PyTorch is
measured two ways (three with --precision bf16 or both), each in its own process so that the peak RSS of each is
its own:

  torch-hf          transformers.BertForPreTraining as is: MLM logits for every position, labels -100 except at
                    the masked positions.
  torch-dense       the same model with the MLM head applied only to the masked positions (gather the sequence
                    output at the masked positions, then model.cls.predictions on those rows; NSP on the pooled
                    output), like NVIDIA's "dense sequence output". The stronger anchor.
  torch-dense-bf16  torch-dense with forward and loss under torch.autocast("cpu", dtype=torch.bfloat16) and the
                    backward outside it, as PyTorch's autocast docs say; fp32 master weights, the same LAMB.

Inputs: random token ids, full-length sequences (no padding, segment 0 for the first half and 1 for the
second), P masked positions per sequence (P = 20 at seq <= 128, 80 above), random NSP labels. Dropout 0.1 as
in the config (train mode). seq/s = batch / median step time over the timed steps (warm-up excluded); peak
RSS = ru_maxrss of the process (so it includes the Python/torch runtime itself).

Ours is run as
    bert bench --model M --seq-len S --batch B --mode train --steps N --warmup W --threads T --max-predictions P
(plus --precision bf16 for "ours-bf16": bf16 GEMM inputs, fp32 accumulation, weights and optimizer) and must print
one JSON object on stdout with at least `seq_per_s` and `peak_rss_mb`. --precision fp32 (the default) runs ours in
fp32, bf16 runs ours-bf16 and torch-dense-bf16, both runs all; ours-bf16 is compared with torch-dense-bf16 and with
torch-dense.

Example:
    .venv-ref/bin/python bench/compare_torch.py --model bert-mini --seq-len 128 --batch 32 --threads 2
    .venv-ref/bin/python bench/compare_torch.py --model bert-mini --seq-len 128 --batch 32 --threads 2 --skip-ours
    .venv-ref/bin/python bench/compare_torch.py --model bert-mini --seq-len 128 --batch 32 --threads 2 --precision both
Needs torch and transformers (see scripts/reference/ for the venv).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# name: (layers, hidden, heads); intermediate = 4 * hidden, vocab 30522, max position 512, type vocab 2, gelu.
PRESETS = {
    "bert-tiny": (2, 128, 2),
    "bert-mini": (4, 256, 4),
    "bert-small": (4, 512, 8),
    "bert-medium": (8, 512, 8),
    "bert-base": (12, 768, 12),
    "bert-large": (24, 1024, 16),
}
VARIANTS = ["torch-hf", "torch-dense", "torch-dense-bf16"]
# Our side → the PyTorch variants it is compared with (seq/s and peak RSS ratios).
COMPARED = {"ours": ["torch-hf", "torch-dense", "ours-openblas"], "ours-bf16": ["torch-dense-bf16", "torch-dense"]}


def bert_config_dict(model):
    layers, hidden, heads = PRESETS[model]
    return dict(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
    )


def default_predictions(seq_len):
    return 20 if seq_len <= 128 else 80


def rss_mb_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


# ----------------------------------------------------------------------------------------------------------
# torch worker (runs in a child process)

def torch_worker(args):
    import torch
    import torch.nn.functional as F
    from transformers import BertConfig, BertForPreTraining
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(args.seed)

    cfg = BertConfig(**bert_config_dict(args.model))
    kwargs = {} if args.attn == "default" else {"attn_implementation": args.attn}
    model = BertForPreTraining._from_config(cfg, **kwargs).float()
    model.train()
    n_params = sum(p.numel() for p in model.parameters())

    B, S, P = args.batch, args.seq_len, args.max_predictions
    if S > cfg.max_position_embeddings:
        raise SystemExit(f"--seq-len {S} exceeds max_position_embeddings {cfg.max_position_embeddings}")
    if P > S - 1:
        raise SystemExit(f"--max-predictions {P} must be < --seq-len {S}")
    g = torch.Generator().manual_seed(args.seed)
    input_ids = torch.randint(0, cfg.vocab_size, (B, S), generator=g)
    token_type_ids = torch.zeros(B, S, dtype=torch.long)
    token_type_ids[:, S // 2:] = 1
    attention_mask = torch.ones(B, S, dtype=torch.long)
    # P distinct positions per row in [1, S), ascending.
    positions = torch.stack([torch.randperm(S - 1, generator=g)[:P].sort().values + 1 for _ in range(B)])
    mlm_ids = torch.randint(0, cfg.vocab_size, (B, P), generator=g)
    nsp_labels = torch.randint(0, 2, (B,), generator=g)
    rows = torch.arange(B).unsqueeze(1).expand(B, P)

    if args.worker == "torch-hf":
        labels = torch.full((B, S), -100, dtype=torch.long)
        labels[rows, positions] = mlm_ids

        def step():
            out = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask,
                        labels=labels, next_sentence_label=nsp_labels, return_dict=True)
            out.loss.backward()
            return out.loss
    else:
        flat_rows, flat_pos, flat_ids = rows.reshape(-1), positions.reshape(-1), mlm_ids.reshape(-1)

        bf16 = args.worker == "torch-dense-bf16"

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                seq, pooled = model.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                                         attention_mask=attention_mask, return_dict=False)[:2]
                gathered = seq[flat_rows, flat_pos]  # [B*P, H]
                mlm_logits = model.cls.predictions(gathered)  # [B*P, V]
                nsp_logits = model.cls.seq_relationship(pooled)  # [B, 2]
                loss = F.cross_entropy(mlm_logits, flat_ids) + F.cross_entropy(nsp_logits, nsp_labels)
            loss.backward()  # outside autocast: backward ops run in the dtype their forward ops chose
            return loss

    if args.optimizer == "lamb":
        forward_backward = step
        lamb = make_lamb(model)
        counter = [0]

        def step():
            loss = forward_backward()
            counter[0] += 1
            lamb(counter[0])
            return loss

    rss_setup = rss_mb_now()
    times = []
    loss = None
    for i in range(args.warmup + args.steps):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
    med = statistics.median(times)
    res = {
        "variant": args.worker,
        "seq_per_s": B / med,
        "seq_per_s_mean": B / statistics.mean(times),
        "step_ms_median": med * 1e3,
        "step_ms_min": min(times) * 1e3,
        "step_ms_max": max(times) * 1e3,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rss_after_setup_mb": rss_setup,
        "loss": float(loss),
        "parameters": n_params,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
    }
    print(json.dumps(res))


# ----------------------------------------------------------------------------------------------------------
# driver

def make_lamb(model, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, max_grad_norm=1.0):
    """LAMB with NVIDIA apex FusedLAMB's semantics (what `bert pretrain --optimizer lamb` does), on torch's
    multi-tensor `_foreach` ops: global clip, moments, bias correction, decoupled decay, per-tensor trust ratio on
    the decayed tensors (not biases or LayerNorm)."""
    import torch
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    decayed = [not any(k in n for k in ("bias", "LayerNorm")) for n, _ in named]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    b1, b2 = betas

    @torch.no_grad()
    def update(t):
        grads = [p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if norm > max_grad_norm:
            torch._foreach_mul_(grads, max_grad_norm / norm)
        torch._foreach_mul_(m, b1)
        torch._foreach_add_(m, grads, alpha=1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        u = torch._foreach_div(m, 1 - b1 ** t)
        denom = torch._foreach_sqrt(torch._foreach_div(v, 1 - b2 ** t))
        torch._foreach_add_(denom, eps)
        torch._foreach_div_(u, denom)
        dec = [i for i, d in enumerate(decayed) if d]
        torch._foreach_add_([u[i] for i in dec], [params[i] for i in dec], alpha=weight_decay)
        w_norms, u_norms = torch._foreach_norm(params), torch._foreach_norm(u)
        for i, (p, ui) in enumerate(zip(params, u)):
            ratio = (w_norms[i] / u_norms[i]) if decayed[i] and w_norms[i] > 0 and u_norms[i] > 0 else 1.0
            p.add_(ui * (-lr * ratio))

    return update


def thread_env(threads):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[k] = str(threads)
    return env


def parse_json_stdout(text, what):
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    pass
    raise SystemExit(f"{what}: no JSON object on stdout:\n{text[-2000:]}")


def run_torch(args, variant):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant] + common_flags(args) + [
        "--seed", str(args.seed), "--attn", args.attn, "--optimizer", args.optimizer]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=thread_env(args.threads))
    if p.returncode != 0:
        raise SystemExit(f"{variant} failed (exit {p.returncode}):\n{p.stderr[-4000:]}")
    return parse_json_stdout(p.stdout, variant)


def run_with_peak_rss(cmd, env=None):
    """Runs cmd to its end; returns its exit code, stdout, stderr and the kernel's account of its peak RSS in MB
    (wait4's usage is that one child's alone, where RUSAGE_CHILDREN would be the largest of all children so far)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), usage.ru_maxrss / 1024.0


def run_ours(args, precision, gemm=None):
    """gemm None runs the GEMM library bert picks for this CPU; "openblas" forces OpenBLAS (BERT_GEMM)."""
    name = ("ours" if precision == "fp32" else "ours-" + precision) + ("-" + gemm if gemm else "")
    cmd = [args.bert, "bench", "--model", args.model, "--seq-len", str(args.seq_len), "--batch", str(args.batch),
           "--mode", "train", "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads), "--max-predictions", str(args.max_predictions)]
    if args.optimizer != "none":
        cmd += ["--optimizer", args.optimizer]
    if precision != "fp32":
        cmd += ["--precision", precision]
    print("+ " + " ".join(cmd), file=sys.stderr)
    code, stdout, stderr, peak_rss_mb_os = run_with_peak_rss(cmd, env=dict(os.environ, BERT_GEMM=gemm) if gemm else None)
    if code != 0:
        raise SystemExit(f"{name} failed (exit {code}):\n{stderr[-4000:]}")
    res = parse_json_stdout(stdout, name)
    for k in ("seq_per_s", "peak_rss_mb"):
        if k not in res:
            raise SystemExit(f"{name}: JSON lacks '{k}': {res}")
    res["peak_rss_mb_os"] = peak_rss_mb_os
    return name, res


def common_flags(args):
    return ["--model", args.model, "--seq-len", str(args.seq_len), "--batch", str(args.batch),
            "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--max-predictions", str(args.max_predictions)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bert-mini", choices=sorted(PRESETS))
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--max-predictions", type=int, default=None,
                    help="masked positions per sequence (default 20 at seq <= 128, else 80)")
    ap.add_argument("--bert", default=".build/release/bert", help="path to our binary")
    ap.add_argument("--skip-ours", action="store_true", help="measure only the PyTorch side")
    ap.add_argument("--attn", default="default", choices=["default", "eager", "sdpa"],
                    help="HF attention implementation for torch (default: HF's default, sdpa)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optimizer", default="none", choices=["none", "lamb"],
                    help="also time the optimizer update (LAMB with apex semantics on both sides)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "both"],
                    help="ours in fp32, ours in bf16 beside torch-dense-bf16, or both")
    ap.add_argument("--openblas-too", action="store_true",
                    help="also ours in fp32 with OpenBLAS's GEMMs (BERT_GEMM=openblas) beside the library bert picks")
    ap.add_argument("--json", action="store_true", help="also print all results as one JSON object")
    ap.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.max_predictions is None:
        args.max_predictions = default_predictions(args.seq_len)
    if args.worker:
        return torch_worker(args)

    bf16 = args.precision != "fp32"
    results = {}
    if not args.skip_ours:
        for precision in {"fp32": ["fp32"], "bf16": ["bf16"], "both": ["fp32", "bf16"]}[args.precision]:
            name, results[name] = run_ours(args, precision)
        if args.openblas_too and args.precision != "bf16":
            name, results[name] = run_ours(args, "fp32", gemm="openblas")
    for v in [name for name in VARIANTS if bf16 or not name.endswith("-bf16")]:
        print(f"running {v} ...", file=sys.stderr)
        results[v] = run_torch(args, v)

    L, H, A = PRESETS[args.model]
    t = results["torch-hf"]
    print(f"\n{args.model} (L={L} H={H} A={A}), seq {args.seq_len}, batch {args.batch}, "
          f"{args.max_predictions} masked/seq, {args.threads} threads, {args.steps} timed steps after "
          f"{args.warmup} warm-up; train step = forward + backward{' + LAMB' if args.optimizer == 'lamb' else ', no optimizer'}; torch {t['torch']} "
          f"({t['attn_implementation']} attention)")
    w = 19 if bf16 else 14  # "vs torch-dense-bf16"
    print(f"{'':{w}s} {'seq/s':>9s} {'step ms':>9s} {'peak RSS MB':>12s} {'loss':>8s}")
    for name, r in results.items():
        step = r.get("step_ms_median", 1e3 * args.batch / r["seq_per_s"])
        loss = "-" if r.get("loss") is None else f"{r['loss']:.3f}"
        print(f"{name:{w}s} {r['seq_per_s']:9.2f} {step:9.1f} {r['peak_rss_mb']:12.1f} {loss:>8s}")
    for ours, variants in COMPARED.items():
        if ours not in results:
            continue
        o = results[ours]
        print(f"\n{ours + ' / torch':{w}s} {'seq/s':>9s} {'peak RSS':>9s}")
        for v in [v for v in variants if v in results]:
            r = results[v]
            print(f"{'vs ' + v:{w}s} {o['seq_per_s'] / r['seq_per_s']:9.2f}x {o['peak_rss_mb'] / r['peak_rss_mb']:8.2f}x")
        print(f"({ours} peak RSS as the OS saw it: {o['peak_rss_mb_os']:.1f} MB)")
    if args.json:
        print(json.dumps({"config": {k: getattr(args, k) for k in ("model", "seq_len", "batch", "threads", "steps",
                                                                    "warmup", "max_predictions", "precision")},
                          "results": results}))


if __name__ == "__main__":
    sys.exit(main())
