#!/usr/bin/env python3
"""Writes Tests/Fixtures/tokenizer/expected.jsonl: BERT tokenization by Hugging Face `tokenizers`.

Each line: {"text": ..., "uncased": [ids], "cased": [ids]} (no [CLS]/[SEP]), with the bert-base-uncased
vocabulary and BertWordPieceTokenizer(vocab, lowercase=True/False, strip_accents=None, clean_text=True,
handle_chinese_chars=True). The texts: hand-written hard cases, then a fixed random sample of lines from the
WikiExtractor files in shared/datasets.

    python3 -m venv .venv-ref && .venv-ref/bin/pip install tokenizers
    .venv-ref/bin/python scripts/reference/tokenizer_reference.py [--datasets ../shared/datasets]
"""
import argparse
import glob
import json
import os
import random

from tokenizers import BertWordPieceTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HARD_CASES = [
    "Hello, world!",
    "HELLO WORLD. Hello World.",
    "",
    "   ",
    "Café naïve résumé façade Ångström Dvořák Łódź Øresund",
    "CAFÉ NAÏVE RÉSUMÉ",
    "e\u0301te\u0301 (combining acute) a\u0300\u0323b\u0308\u0332",
    "中文字符测试，北京大学。日本語のテキスト、東京。",
    "한국어 텍스트 서울특별시",
    "mixed中文and English混合text",
    "emoji 😀 😂 👍🏽 🇺🇸 👨‍👩‍👧‍👦 ❤️ ✨ 🥰 🫠 done",
    "control\u0001chars\u0007here\u001b[0m and \u007f delete",
    "nul\u0000inside\u0000word",
    "replacement\ufffdchar and \ufffd alone",
    "zero\u200bwidth\u200cjoiner\u200dnon\u2060joiner\ufeffbom",
    "soft\u00adhyphen and bidi \u202aembedded\u202c \u200eLRM\u200f",
    "tabs\tand\nnewlines\r\nand\u000bvertical\u000cform feed",
    "no-break\u00a0space, thin\u2009space, ideographic\u3000space, line\u2028sep para\u2029sep nel\u0085x",
    "private use \ue000\uf8ff \U000f0000 end",
    "unassigned \u0378 \U0001fb9f end",
    "a" * 100,
    "b" * 101,
    "supercalifragilisticexpialidocious" * 3 + " ok",
    "Ünïcödé" * 15,
    "!!!???...,,,;;;:::---___***&&&%%%$$$###@@@",
    "((nested [brackets] {braces} <angles>))",
    "quotes «guillemets» „German“ “curly” ‘single’ — em–dash … ellipsis",
    "The [MASK] sat on the [MASK].",
    "[CLS] sentence one [SEP] sentence two [SEP] [PAD][PAD]",
    "word[MASK]word [mask] [Mask] [MASK [ MASK ] [UNK] [UNK",
    "[[MASK]] [[[SEP]]]",
    "Turkish İstanbul, ıiIİ, DİYARBAKIR",
    "German Straße, STRASSE, ẞ, Fußgängerübergänge",
    "Greek ΟΔΥΣΣΕΥΣ Σίσυφος ΣΑΣ σας ς",
    "Cyrillic Москва ЁЖИК ёжик Йод й",
    "Arabic العربية مرحبا بالعالم ١٢٣",
    "Hebrew עברית שָׁלוֹם",
    "Hindi हिन्दी देवनागरी",
    "Thai ภาษาไทย สวัสดี",
    "Vietnamese Tiếng Việt có dấu ĐƯỜNG",
    "ligatures ﬁ ﬂ ﬀ and full-width ＡＢＣ１２３！",
    "math ∑∫√∞≠≤≥ ±×÷ ½ ² ³ µ °C ℃ ℉ Ω Å K",
    "currency $100 €20 £5 ¥1000 ₹50 ₿",
    "CJK compat 豈 更 and ext B 𠀀 𠀁 and ext E 𫠠 𫤠",
    "Kangxi ⼀ ⼆ radicals and ㈠ ㋿",
    "URL https://en.wikipedia.org/wiki/BERT_(language_model)?a=1&b=2#x",
    "email first.last+tag@example.co.uk",
    "numbers 3.14159 1,000,000 -42 +7 1e-10 0x1F",
    "don't won't it's O'Neill rock'n'roll",
    "U.S.A. e.g. i.e. Ph.D. a.m.",
    "\u0130\u0131 \u01c5 \u1e9e \u2126 \u212a \u212b \u0345",
    "Hangul jamo \u1100\u1161\u11a8 and compat ㄱㅏ",
    "combining over punctuation ,\u0301 .\u0308 and over space \u0301",
    "\u1fef \u037e \u0387 \u00b4 \u02dd",
    "Devanagari with nukta क़ ख़ and Tamil க்ஷ",
]


def wiki_sample(datasets, count, seed=20260):
    files = sorted(glob.glob(os.path.join(datasets, "wikipedia", "enwiki_wikiextractor_2015", "wiki_*")))
    lines = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.strip() and not line.startswith("<doc") and not line.startswith("</doc>"):
                    lines.append(line)
    rng = random.Random(seed)
    picked = rng.sample(lines, count)
    # Keep the fixture small: long paragraphs are cut at a word boundary near 600 characters.
    out = []
    for line in picked:
        if len(line) > 600:
            cut = line.rfind(" ", 0, 600)
            line = line[: cut if cut > 0 else 600]
        out.append(line)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--count", type=int, default=260)
    ap.add_argument("--output", default=os.path.join(ROOT, "Tests", "Fixtures", "tokenizer", "expected.jsonl"))
    args = ap.parse_args()
    vocab = os.path.join(args.datasets, "bert", "bert-base-uncased-vocab.txt")
    common = dict(strip_accents=None, clean_text=True, handle_chinese_chars=True)
    uncased = BertWordPieceTokenizer(vocab, lowercase=True, **common)
    cased = BertWordPieceTokenizer(vocab, lowercase=False, **common)
    texts = HARD_CASES + wiki_sample(args.datasets, args.count)
    with open(args.output, "w", encoding="utf-8") as f:
        for text in texts:
            row = {
                "text": text,
                "uncased": uncased.encode(text, add_special_tokens=False).ids,
                "cased": cased.encode(text, add_special_tokens=False).ids,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} lines to {args.output}")


if __name__ == "__main__":
    main()
