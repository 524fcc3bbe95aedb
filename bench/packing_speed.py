#!/usr/bin/env python3
"""Real tokens per second of pre-training on packed rows beside unpacked rows, in one run.

Trains the same model from the same seed for a few steps on a directory of NVIDIA-layout shards and on its
`bert pack` output, alternating the two (ABAB…) so that a slower stretch of the machine hits both, and reports the
median over steps (the first two of each run dropped) of `tokens_per_s` from `bert pretrain`'s metrics log: real
(non-padding) tokens per second, the figure the two layouts share. Rows per batch are the same on both sides, so
a packed batch carries more sequences.

    python3 bench/packing_speed.py --bert .build/release/bert --unpacked U --packed P --seq-len 512 \
        --max-predictions 80 --model bert-mini --batch 8 --steps 12 --repeat 2 --threads 2
"""
import argparse, json, os, statistics, subprocess, tempfile


def run(a, shards, packed, workdir, k):
    out = os.path.join(workdir, f"{'packed' if packed else 'unpacked'}-{k}")
    log = out + ".jsonl"
    P = a.max_predictions + (a.max_sequences_per_pack if packed else 0)
    cmd = [a.bert, "pretrain", "--input-dir", shards, "--output-dir", out, "--model", a.model,
           "--max-seq-length", str(a.seq_len), "--max-predictions-per-seq", str(P),
           "--train-batch-size", str(a.batch), "--max-steps", str(a.steps), "--num-steps-per-checkpoint", "1000000",
           "--learning-rate", "1e-3", "--warmup-proportion", "0.1", "--json-summary", log, "--threads", str(a.threads)]
    if packed:
        cmd.append("--packed")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    records = [json.loads(line) for line in open(log)]
    train = [r for r in records if r["type"] == "train"][2:]
    return statistics.median(r["tokens_per_s"] for r in train), statistics.median(r["seq_per_s"] for r in train)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bert", default=".build/release/bert")
    p.add_argument("--unpacked", required=True, help="directory of NVIDIA-layout shards")
    p.add_argument("--packed", required=True, help="the same data through `bert pack`")
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--max-predictions", type=int, required=True, help="P of the unpacked shards")
    p.add_argument("--max-sequences-per-pack", type=int, default=3)
    p.add_argument("--model", default="bert-mini")
    p.add_argument("--batch", type=int, default=32, help="rows per step, both layouts")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    results = {False: [], True: []}
    with tempfile.TemporaryDirectory() as workdir:
        for k in range(a.repeat):
            for packed in (False, True):
                results[packed].append(run(a, a.packed if packed else a.unpacked, packed, workdir, k))
    print(f"| layout | tokens/s per run | sequences/s per run |")
    print(f"| --- | --- | --- |")
    for packed in (False, True):
        t = ", ".join(f"{x[0]:.0f}" for x in results[packed])
        s = ", ".join(f"{x[1]:.1f}" for x in results[packed])
        print(f"| {'packed' if packed else 'unpacked'} | {t} | {s} |")
    ratio = statistics.median(x[0] for x in results[True]) / statistics.median(x[0] for x in results[False])
    print(f"\nreal tokens per second, packed / unpacked: {ratio:.2f}x "
          f"({a.model}, S {a.seq_len}, {a.batch} rows per step, {a.steps} steps, {a.threads} threads)")


if __name__ == "__main__":
    main()
