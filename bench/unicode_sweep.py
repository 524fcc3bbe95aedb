#!/usr/bin/env python3
"""Every Unicode code point through `bert tokenize` and HF `tokenizers`, uncased and cased.

Each code point c (surrogates and `\\n` excepted) is tokenized in the line "xc cy Xc.C" so that dropping,
splitting, CJK isolation, accent stripping and lower-casing all show. Prints the disagreeing code points.

    .venv-ref/bin/python bench/unicode_sweep.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

from tokenizers import BertWordPieceTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERT = os.path.join(ROOT, ".build", "release", "bert")
VOCAB = os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "bert-base-uncased-vocab.txt")

points = [cp for cp in range(0x110000) if not (0xD800 <= cp <= 0xDFFF) and cp != 10]
lines = [f"x{chr(cp)} {chr(cp)}y X{chr(cp)}.{chr(cp)}C" for cp in points]
with tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False) as f:
    f.write("\n".join(lines) + "\n")
    path = f.name
bad_total = 0
for mode, lowercase in (("uncased", True), ("cased", False)):
    hf = BertWordPieceTokenizer(VOCAB, lowercase=lowercase, strip_accents=None, clean_text=True,
                                handle_chinese_chars=True)
    expected = [e.ids for e in hf.encode_batch(lines)]
    cmd = [BERT, "tokenize", "--vocab", VOCAB, path] + ([] if lowercase else ["--cased"])
    got = [json.loads(l) for l in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    assert len(got) == len(lines)
    bad = [(cp, a, b) for cp, a, b in zip(points, got, expected) if a != b]
    bad_total += len(bad)
    print(f"{mode}: {len(points) - len(bad)}/{len(points)} code points agree")
    for cp, a, b in bad[:40]:
        name = unicodedata.name(chr(cp), "?")
        print(f"  U+{cp:04X} {unicodedata.category(chr(cp))} {name}: bert {hf.decode(a, skip_special_tokens=False)!r} hf {hf.decode(b, skip_special_tokens=False)!r}")
os.unlink(path)
sys.exit(1 if bad_total else 0)
