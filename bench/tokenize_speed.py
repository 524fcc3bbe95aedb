#!/usr/bin/env python3
"""Tokens per second: `bert tokenize` (release build) against Hugging Face `tokenizers` on the same text.

The text: the non-empty, non-`<doc>` lines of the first N WikiExtractor files. Both sides use the same
thread count (`--threads` for bert, RAYON_NUM_THREADS for HF `encode_batch`) and the uncased
bert-base vocabulary. bert's time is the whole process run (start, vocabulary load, reading the file,
writing JSON to /dev/null); HF's is `encode_batch` on lines already in memory. Best of `--repeat` runs.

    swift build -c release --product bert
    .venv-ref/bin/python bench/tokenize_speed.py [--threads 2] [--files 5]
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    ap.add_argument("--datasets", default=os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cased", action="store_true")
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)   # before tokenizers starts its pool
    from tokenizers import BertWordPieceTokenizer

    paths = sorted(glob.glob(os.path.join(args.datasets, "wikipedia", "enwiki_wikiextractor_2015", "wiki_*")))
    paths = paths[: args.files]
    vocab = os.path.join(args.datasets, "bert", "bert-base-uncased-vocab.txt")
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.strip() and not line.startswith("<doc") and not line.startswith("</doc>"):
                    lines.append(line)
    size = sum(len(l.encode("utf-8")) + 1 for l in lines)
    hf = BertWordPieceTokenizer(vocab, lowercase=not args.cased, strip_accents=None, clean_text=True,
                                handle_chinese_chars=True)
    hf_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        encodings = hf.encode_batch(lines)
        hf_times.append(time.perf_counter() - t0)
    tokens = sum(len(e.ids) for e in encodings)

    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        text_path = f.name
    cmd = [args.bert, "tokenize", "--vocab", vocab, "--threads", str(args.threads), text_path]
    if args.cased:
        cmd.append("--cased")
    bert_times = []
    try:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            bert_times.append(time.perf_counter() - t0)
    finally:
        os.unlink(text_path)
    hf_best, bert_best = min(hf_times), min(bert_times)
    print(f"text: {len(paths)} files, {len(lines)} lines, {size / 1e6:.1f} MB, {tokens} tokens; "
          f"threads {args.threads}; {'cased' if args.cased else 'uncased'}")
    print(f"HF tokenizers encode_batch: {hf_best:.3f} s  {tokens / hf_best / 1e6:.2f} M tokens/s")
    print(f"bert tokenize:              {bert_best:.3f} s  {tokens / bert_best / 1e6:.2f} M tokens/s")
    print(f"ratio bert/HF: {hf_best / bert_best:.2f}x")


if __name__ == "__main__":
    main()
