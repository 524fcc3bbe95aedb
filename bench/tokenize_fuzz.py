#!/usr/bin/env python3
"""Random lines through `bert tokenize` and HF `tokenizers` (uncased and cased): a differential fuzz.

Lines mix ASCII, capitals, accents, combining marks, CJK, emoji, controls, odd whitespace, special tokens
and long runs (around the 100-character word limit, before and after accent stripping).

    .venv-ref/bin/python bench/tokenize_fuzz.py [--lines 100000] [--seed 1]
"""
import argparse
import os
import random
import sys

from tokenizer_pair import MODES, both_ids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERT = os.path.join(ROOT, ".build", "release", "bert")
VOCAB = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "bert-base-uncased-vocab.txt")

POOLS = [
    "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    "     \t\r", "éèêëàâäôöûüçñÉÀÖÜßẞİıŁøØåÅ", "\u0300\u0301\u0308\u0323\u0345\u20dd", "中文字測試日本語한국어豈𠀀𫠠",
    "😀👍🏽🇺🇸\u200d❤️✨🫠", "\u0000\u0001\u001b\u007f\u0085\u00ad\u200b\u200e\u2028\u2029\u3000\ufeff\ufffd\ue000",
    "ΣσςΑΩΩÅKµ", "абвгдЁЖИКйЙ", "ابتثעבריתहिन्दीภาษาไทย", "«»„“”‘’—–…‐§¶",
]
SPECIALS = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]", "[MASK", "MASK]"]


def line(rng):
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.08:
            parts.append(rng.choice(SPECIALS))
        elif r < 0.12:
            pool = rng.choice(POOLS[:2] + POOLS[5:7])
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(95, 110))))
        else:
            pool = rng.choice(POOLS)
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        parts.append(rng.choice(["", " ", " ", "\t"]))
    return "".join(parts).replace("\n", " ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lines = [line(rng) for _ in range(args.lines)]
    bad = 0
    for mode, lowercase in MODES:
        got, expected, _ = both_ids(lines, VOCAB, BERT, lowercase)
        diff = [(l, a, b) for l, a, b in zip(lines, got, expected) if a != b]
        bad += len(diff)
        print(f"{mode}: {len(lines) - len(diff)}/{len(lines)} lines identical")
        for l, a, b in diff[:5]:
            print(f"  {l!r}\n    bert {a}\n    hf   {b}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
