#!/usr/bin/env python3
"""A long pre-training run of ours beside PyTorch's: the same data, initial weights, recipe and evaluation.

  prepare  `bert prepare` on the ../shared/datasets Wikipedia text (WikiExtractor output) with the bert-base-uncased
           vocabulary at seq 128 / 20 predictions, a few documents held out as the test shard; and one initial
           model (transformers' BertForPreTraining, seeded init) saved as an HF directory that both sides start from.
  ours     `bert pretrain --init-checkpoint init …` with the recipe below, evaluating on the test shard.
  torch    the same in PyTorch: transformers' BertForPreTraining with the MLM head on the masked positions only
           (NVIDIA's layout), the LAMB of scripts/reference/optimizers.py (apex FusedLAMB semantics), NVIDIA's poly
           warm-up schedule of scripts/reference/schedules.py, the same HDF5 shards read with h5py in NVIDIA's
           order (shard files shuffled, then each file's rows: what `bert pretrain` does), dropout 0.1.
  report   the held-out MLM accuracy of every run by step, the time each side needs to reach the accuracy PyTorch
           ends at (MLPerf's time-to-accuracy), a markdown table and one SVG of all curves (`bert plot`).

Both sides write the same metrics log (`--json-summary` format: train, eval and summary records); `elapsed` in an
eval record is the wall time since the run started (model loaded), evaluations included, on both sides. Each side
draws its own data order and dropout from its seed: the curves agree in distribution, not step for step.

Run from the repository root (needs torch, transformers, h5py; see SWIFT-RECIPES.md):
    .venv-ref/bin/python bench/pretrain_compare.py prepare
    .venv-ref/bin/python bench/pretrain_compare.py ours  --seed 1 --threads 2 [--precision bf16]
    .venv-ref/bin/python bench/pretrain_compare.py torch --seed 1 --threads 2 [--precision bf16] [--global-shuffle]
    .venv-ref/bin/python bench/pretrain_compare.py report
On a machine whose speed drifts (a shared VM), run each pair at the same time with `--threads 1` on each side, so that
a slow spell slows both: `… torch --seed 1 --threads 1 & … ours --seed 1 --threads 1 & wait`.
Everything goes under --work (default out/pretrain-compare); `report` writes bench/results/pretrain/.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "datasets")
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))

# One recipe for both sides (NVIDIA's LAMB and poly schedule; bert-mini with the bert-base-uncased vocabulary).
# Peak 5e-3: at 1e-2 whether a 400-step run leaves the unigram plateau at all was up to the seed, on both sides.
RECIPE = dict(model="bert-mini", batch=32, learning_rate=5e-3, warmup=0.1, poly_power=0.5, steps=400, eval_every=50,
              eval_batch=64, seq=128, predictions=20)
MINI = dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024)


def recipe_flags(p):
    for k, v in RECIPE.items():
        if k != "model":
            p.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)


def run(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kw)


# ----------------------------------------------------------------------------------------------------------------
# prepare

def prepare(a):
    vocab = os.path.join(SHARED, "bert", "bert-base-uncased-vocab.txt")
    text = os.path.join(SHARED, "wikipedia", "enwiki_wikiextractor_2015")
    shards = os.path.join(a.work, "shards")
    if not os.path.isdir(shards):
        run([a.bert, "prepare", "--input", text, "--input-format", "wikiextractor", "--vocab-file", vocab,
             "--output-dir", shards, "--max-seq-length", "128", "--max-predictions-per-seq", "20",
             "--dupe-factor", "3", "--num-shards", "8", "--eval-fraction", "0.003", "--num-test-shards", "1"])
    init = os.path.join(a.work, "init")
    if not os.path.isdir(init):
        import torch
        from transformers import BertConfig, BertForPreTraining
        torch.manual_seed(a.init_seed)
        cfg = BertConfig(vocab_size=30522, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
                         initializer_range=0.02, layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                         attention_probs_dropout_prob=0.1, **MINI)
        model = BertForPreTraining(cfg)
        model.save_pretrained(init, safe_serialization=True)
        with open(vocab) as f, open(os.path.join(init, "vocab.txt"), "w") as g:
            g.write(f.read())
    print(f"shards in {shards}, initial model in {init}")


# ----------------------------------------------------------------------------------------------------------------
# ours

def ours(a):
    name = f"ours{'-bf16' if a.precision == 'bf16' else ''}-seed{a.seed}"
    log = os.path.join(a.work, name + ".jsonl")
    out = os.path.join(a.work, "runs", name)
    for path in (log,):
        if os.path.exists(path):
            os.remove(path)
    run([a.bert, "pretrain", "--init-checkpoint", os.path.join(a.work, "init"), "--input-dir",
         os.path.join(a.work, "shards"), "--output-dir", out, "--max-seq-length", str(a.seq),
         "--max-predictions-per-seq", str(a.predictions), "--train-batch-size", str(a.batch), "--optimizer", "lamb",
         "--learning-rate", str(a.learning_rate), "--warmup-proportion", str(a.warmup), "--lr-schedule", "poly",
         "--poly-power", str(a.poly_power), "--max-steps", str(a.steps), "--eval-dir", os.path.join(a.work, "shards"),
         "--eval-every", str(a.eval_every), "--eval-batch-size", str(a.eval_batch), "--num-steps-per-checkpoint",
         str(a.steps), "--json-summary", log, "--log-freq", "10", "--threads", str(a.threads), "--seed", str(a.seed),
         "--precision", a.precision])


# ----------------------------------------------------------------------------------------------------------------
# torch

def load_shards(pattern):
    import h5py
    import numpy as np
    keys = ["input_ids", "segment_ids", "input_mask", "masked_lm_positions", "masked_lm_ids", "next_sentence_labels"]
    parts = {k: [] for k in keys}
    files = sorted(glob.glob(pattern))
    sizes = []
    if not files:
        raise SystemExit(f"no shards match {pattern}: run `prepare` first")
    for path in files:
        with h5py.File(path, "r") as f:
            for k in keys:
                parts[k].append(np.asarray(f[k][:], dtype=np.int64))
            sizes.append(len(parts[keys[0]][-1]))
    data = {k: np.concatenate(v) for k, v in parts.items()}
    data["shard_sizes"] = sizes
    return data


def shard_order(rng, sizes):
    """One epoch in NVIDIA's reading order, which `bert pretrain` keeps too: the shard files in a random order, each
    file's rows shuffled, one file after another (a short run sees the documents of one shard, with their
    dupe-factor copies; a global shuffle would spread it over all of them)."""
    import numpy as np
    starts = np.cumsum([0] + sizes[:-1])
    return np.concatenate([starts[f] + rng.permutation(sizes[f]) for f in rng.permutation(len(sizes))])


def batch_tensors(data, rows):
    """A batch as NVIDIA's trainer sees it; the masked positions of a row end at its first 0 (NVIDIA's reading)."""
    import numpy as np
    import torch
    pos, ids = data["masked_lm_positions"][rows], data["masked_lm_ids"][rows]
    real = np.cumprod(pos != 0, axis=1).astype(bool)
    r, c = np.nonzero(real)
    return dict(input_ids=torch.from_numpy(data["input_ids"][rows]),
                token_type_ids=torch.from_numpy(data["segment_ids"][rows]),
                attention_mask=torch.from_numpy(data["input_mask"][rows]),
                rows=torch.from_numpy(r), positions=torch.from_numpy(pos[r, c]), labels=torch.from_numpy(ids[r, c]),
                nsp=torch.from_numpy(data["next_sentence_labels"][rows]))


def losses(model, b, bf16=False):
    """Mean MLM cross-entropy over the batch's masked positions, mean NSP cross-entropy, and the correct counts; with
    `bf16`, the model runs under `torch.autocast("cpu", dtype=torch.bfloat16)` (the losses in fp32)."""
    import torch
    import torch.nn.functional as F
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        seq, pooled = model.bert(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                                 attention_mask=b["attention_mask"], return_dict=False)[:2]
        mlm_logits = model.cls.predictions(seq[b["rows"], b["positions"]])
        nsp_logits = model.cls.seq_relationship(pooled)
    mlm_logits, nsp_logits = mlm_logits.float(), nsp_logits.float()
    mlm, nsp = F.cross_entropy(mlm_logits, b["labels"]), F.cross_entropy(nsp_logits, b["nsp"])
    right = (mlm_logits.argmax(-1) == b["labels"]).sum().item(), (nsp_logits.argmax(-1) == b["nsp"]).sum().item()
    return mlm, nsp, right


def evaluate(model, data, batch, bf16=False):
    import torch
    model.eval()
    n = len(data["input_ids"])
    mlm = nsp = 0.0
    masked = mlm_right = nsp_right = 0
    with torch.no_grad():
        for start in range(0, n, batch):
            b = batch_tensors(data, list(range(start, min(n, start + batch))))
            lm, ls, (r1, r2) = losses(model, b, bf16)
            k, s = len(b["labels"]), len(b["nsp"])
            mlm += lm.item() * k
            nsp += ls.item() * s
            masked, mlm_right, nsp_right = masked + k, mlm_right + r1, nsp_right + r2
    model.train()
    return {"eval_mlm_loss": mlm / masked, "eval_mlm_accuracy": mlm_right / masked, "eval_nsp_loss": nsp / n,
            "eval_nsp_accuracy": nsp_right / n, "eval_loss": mlm / masked + nsp / n, "eval_sequences": n}


def torch_trainer(a):
    import numpy as np
    import torch
    from transformers import BertForPreTraining
    from transformers.utils import logging as hf_logging
    from optimizers import lamb_step
    from schedules import poly_warmup

    hf_logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    model = BertForPreTraining.from_pretrained(os.path.join(a.work, "init")).float()
    model.train()
    train = load_shards(os.path.join(a.work, "shards", "*training*.hdf5"))
    test = load_shards(os.path.join(a.work, "shards", "*test*.hdf5"))
    params = dict(model.named_parameters())   # the tied decoder weight appears once, as the word embeddings
    m = {n: torch.zeros_like(p) for n, p in params.items()}
    v = {n: torch.zeros_like(p) for n, p in params.items()}
    no_decay = ("bias", "gamma", "beta", "LayerNorm")   # NVIDIA run_pretraining.py's groups
    lrs = poly_warmup(a.learning_rate, a.warmup, a.steps, a.poly_power)
    rng = np.random.default_rng(a.seed)
    def epoch_order():
        return rng.permutation(len(train["input_ids"])) if a.global_shuffle else shard_order(rng, train["shard_sizes"])
    order, cursor = epoch_order(), 0

    bf16 = a.precision == "bf16"
    variant = ("bf16-" if bf16 else "") + ("global-shuffle-" if a.global_shuffle else "")
    log_path = os.path.join(a.work, f"pytorch-{variant}seed{a.seed}.jsonl")
    log = open(log_path, "w")

    def write(record):
        log.write(json.dumps(record) + "\n")
        log.flush()

    start = time.perf_counter()
    e = evaluate(model, test, a.eval_batch, bf16)
    write({"type": "eval", "step": 0, "elapsed": time.perf_counter() - start, **e})
    window, window_seqs, last = time.perf_counter(), 0, None
    for step in range(1, a.steps + 1):
        if cursor + a.batch > len(order):
            order, cursor = epoch_order(), 0
        b = batch_tensors(train, np.sort(order[cursor:cursor + a.batch]))
        cursor += a.batch
        model.zero_grad(set_to_none=True)
        mlm, nsp, _ = losses(model, b, bf16)
        loss = mlm + nsp
        loss.backward()
        with torch.no_grad():
            w = {n: p.data for n, p in params.items()}
            grads = {n: p.grad for n, p in params.items()}
            norm = lamb_step(w, m, v, grads, lrs[step - 1], step, decays=lambda n: not any(k in n for k in no_decay))
        last = loss.item()
        if not np.isfinite(last):
            raise SystemExit(f"pytorch: loss {last} at step {step}")
        window_seqs += a.batch
        now = time.perf_counter()
        if step % 10 == 0 or step == a.steps:
            write({"type": "train", "step": step, "loss": last, "mlm_loss": mlm.item(), "nsp_loss": nsp.item(),
                   "learning_rate": lrs[step - 1], "grad_norm": float(norm), "seq_per_s": window_seqs / (now - window),
                   "elapsed": now - start})
            print(f"pytorch step {step}/{a.steps} loss {last:.4f}", file=sys.stderr, flush=True)
            window, window_seqs = now, 0
        if step % a.eval_every == 0 or step == a.steps:
            e = evaluate(model, test, a.eval_batch, bf16)
            write({"type": "eval", "step": step, "elapsed": time.perf_counter() - start, **e})
            print(f"pytorch eval at step {step}: mlm_accuracy {e['eval_mlm_accuracy']:.4f}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    write({"type": "summary", "step": a.steps, "e2e_train_time": elapsed,
           "training_sequences_per_second": a.steps * a.batch / elapsed, "final_loss": last})
    log.close()
    print(log_path)


# ----------------------------------------------------------------------------------------------------------------
# report

def read_log(path):
    evals, summary = [], None
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type") == "eval":
                evals.append(r)
            elif r.get("type") == "summary":
                summary = r
    return evals, summary


def time_to(evals, target):
    """The first evaluation at or above `target`: (step, elapsed seconds), or None."""
    for e in evals:
        if e["eval_mlm_accuracy"] >= target:
            return e["step"], e["elapsed"]
    return None


def report(a):
    logs = sorted(glob.glob(os.path.join(a.work, "ours-*seed*.jsonl")) + glob.glob(os.path.join(a.work, "pytorch-*seed*.jsonl")))
    if not logs:
        raise SystemExit(f"no logs in {a.work}: run `ours` and `torch` first")
    runs = {os.path.basename(p)[:-6]: read_log(p) for p in logs}
    os.makedirs(a.results, exist_ok=True)
    for p in logs:   # the raw logs travel with the results
        with open(p) as f, open(os.path.join(a.results, os.path.basename(p)), "w") as g:
            g.write(f.read())
    names = list(runs)
    steps = sorted({e["step"] for evals, _ in runs.values() for e in evals})
    lines = ["| step | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for s in steps:
        cells = []
        for n in names:
            hit = [e for e in runs[n][0] if e["step"] == s]
            cells.append(f"{hit[0]['eval_mlm_accuracy'] * 100:.2f}" if hit else "")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "| run | final held-out MLM accuracy | NSP accuracy | wall time (s) | training seq/s |", "| --- | --- | --- | --- | --- |"]
    for n in names:
        evals, summary = runs[n]
        lines.append(f"| {n} | {evals[-1]['eval_mlm_accuracy'] * 100:.2f} % | {evals[-1]['eval_nsp_accuracy'] * 100:.1f} % | "
                     f"{summary['e2e_train_time']:.0f} | {summary['training_sequences_per_second']:.2f} |" if summary else f"| {n} | unfinished | | | |")
    # Time to accuracy (MLPerf's metric): per seed, the target is the held-out MLM accuracy PyTorch's fp32 run ends at;
    # each run of that seed is timed to its first evaluation at or above it (wall time, evaluations included).
    lines += ["", "Time to accuracy: per seed, the target is the final held-out MLM accuracy of PyTorch's fp32 run; each "
              "run's time is the wall time (evaluations included) of its first evaluation at or above it. Ratios are "
              "against PyTorch fp32's time and against PyTorch's run of the same precision.", "",
              "| seed | target | run | step, s at the target | / PyTorch fp32 | / PyTorch same precision |",
              "| --- | --- | --- | --- | --- | --- |"]
    for reference in (n for n in names if n.startswith("pytorch-seed") and runs[n][1]):   # finished runs only
        seed = reference[len("pytorch-seed"):]
        evals = runs[reference][0]
        target = evals[-1]["eval_mlm_accuracy"]
        # A target within a point of the plateau (the first evaluation after step 0) measures nothing.
        if target < max(e["eval_mlm_accuracy"] for e in evals if e["step"] <= a.eval_every) + 0.01:
            lines.append(f"| {seed} | {target * 100:.2f} % | PyTorch did not leave the unigram plateau | — | — | — |")
            continue
        base = time_to(evals, target)
        for n in (m for m in names if m.endswith("-seed" + seed) and runs[m][1]):
            hit = time_to(runs[n][0], target)
            twin = "pytorch-bf16-seed" + seed if "bf16" in n else reference
            same = time_to(runs[twin][0], target) if twin in runs and runs[twin][1] else None
            ratio = lambda t: f"{hit[1] / t[1]:.2f}" if hit and t else "—"
            lines.append(f"| {seed} | {target * 100:.2f} % | {n} | " + (f"{hit[0]}, {hit[1]:.0f}" if hit else "not reached")
                         + f" | {ratio(base)} | {ratio(same) if n.startswith('ours') else '—'} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(a.results, "table.md"), "w") as f:
        f.write(table)
    run([a.bert, "plot", *[os.path.join(a.results, os.path.basename(p)) for p in logs], "-o",
         os.path.join(a.results, "curves.svg"), "--title", "bert-mini on Wikipedia, LAMB: ours vs PyTorch (held-out MLM accuracy)"])
    print(table)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["prepare", "ours", "torch", "report"])
    p.add_argument("--work", default=os.path.join(ROOT, "out", "pretrain-compare"))
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "pretrain"))
    p.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="ours: `bert pretrain --precision` (bf16: bf16 GEMM inputs, fp32 everything else; logs "
                        "ours-bf16-seedN); torch: the forward under torch.autocast bf16 (logs pytorch-bf16-seedN)")
    p.add_argument("--global-shuffle", action="store_true",
                   help="torch: one shuffle over all shards' rows instead of NVIDIA's shard-by-shard order")
    recipe_flags(p)
    a = p.parse_args()
    {"prepare": prepare, "ours": ours, "torch": torch_trainer, "report": report}[a.what](a)


if __name__ == "__main__":
    main()
