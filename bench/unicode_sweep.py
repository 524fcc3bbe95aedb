#!/usr/bin/env python3
"""Every Unicode code point through `bert tokenize` and HF `tokenizers`, uncased and cased.

Each code point c (surrogates and `\\n` excepted) is tokenized in the line "xc cy Xc.C" so that dropping,
splitting, CJK isolation, accent stripping and lower-casing all show. Prints the disagreeing code points.

    .venv-ref/bin/python bench/unicode_sweep.py
"""
import os
import sys
import unicodedata

from tokenizer_pair import MODES, both_ids

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERT = os.path.join(ROOT, ".build", "release", "bert")
VOCAB = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "bert-base-uncased-vocab.txt")

points = [cp for cp in range(0x110000) if not (0xD800 <= cp <= 0xDFFF) and cp != 10]
lines = [f"x{chr(cp)} {chr(cp)}y X{chr(cp)}.{chr(cp)}C" for cp in points]
bad_total = 0
for mode, lowercase in MODES:
    got, expected, hf = both_ids(lines, VOCAB, BERT, lowercase)
    bad = [(cp, a, b) for cp, a, b in zip(points, got, expected) if a != b]
    bad_total += len(bad)
    print(f"{mode}: {len(points) - len(bad)}/{len(points)} code points agree")
    for cp, a, b in bad[:40]:
        name = unicodedata.name(chr(cp), "?")
        print(f"  U+{cp:04X} {unicodedata.category(chr(cp))} {name}: bert {hf.decode(a, skip_special_tokens=False)!r} hf {hf.decode(b, skip_special_tokens=False)!r}")
sys.exit(1 if bad_total else 0)
