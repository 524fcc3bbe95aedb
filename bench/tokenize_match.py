#!/usr/bin/env python3
"""Match rate of `bert tokenize` against Hugging Face `tokenizers` over the Wikipedia files.

Input: every non-empty line of the WikiExtractor files that is not a `<doc …>` / `</doc>` line.
Both tokenizers get the same lines; a line matches when its ids (with [CLS]/[SEP]) are identical.

    .venv-ref/bin/python bench/tokenize_match.py [--bert .build/release/bert] [--files 'glob']
"""
import argparse
import glob
import os

from tokenizer_pair import MODES, both_ids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_lines(paths):
    lines = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.strip() and not line.startswith("<doc") and not line.startswith("</doc>"):
                    lines.append(line)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    ap.add_argument("--datasets", default=os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--files", default="wikipedia/enwiki_wikiextractor_2015/wiki_*")
    ap.add_argument("--show", type=int, default=3, help="mismatching lines to print per mode")
    args = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(args.datasets, args.files)))
    vocab = os.path.join(args.datasets, "bert", "bert-base-uncased-vocab.txt")
    lines = read_lines(paths)
    total_bytes = sum(len(l.encode("utf-8")) + 1 for l in lines)
    print(f"{len(paths)} files, {len(lines)} lines, {total_bytes / 1e6:.1f} MB")
    for mode, lowercase in MODES:
        got, expected, hf = both_ids(lines, vocab, args.bert, lowercase)
        same = sum(1 for a, b in zip(got, expected) if a == b)
        tokens = sum(len(e) for e in expected)
        print(f"{mode}: {same}/{len(lines)} lines identical ({100 * same / len(lines):.4f} %), {tokens} tokens")
        shown = 0
        for line, a, b in zip(lines, got, expected):
            if a != b and shown < args.show:
                shown += 1
                print(f"  mismatch: {line[:200]!r}\n    bert: {hf.decode(a)[:200]!r}\n    hf:   {hf.decode(b)[:200]!r}")

if __name__ == "__main__":
    main()
