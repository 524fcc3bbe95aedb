#!/usr/bin/env python3
"""`bert vocab` against HF `tokenizers`' WordPiece trainer on the same text: time and token overlap.

The text: the first N WikiExtractor files (about 1 MB each). HF gets the same lines without the `<doc>`
markers (bert skips them itself) and the same settings: uncased, min_frequency 2, limit_alphabet 1000,
and a vocab_size 99 smaller, since it has only the 5 special tokens where BERT's layout also holds
[unused0]…[unused98]. Overlap is counted over the learned tokens (the [unusedN] left out).

    swift build -c release --product bert
    .venv-ref/bin/python bench/vocab_compare.py [--files 10] [--vocab-size 30522] [--threads 2]
"""
import argparse
import glob
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    ap.add_argument("--datasets", default=os.path.join(ROOT, "..", "shared", "datasets"))
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    from tokenizers import BertWordPieceTokenizer

    paths = sorted(glob.glob(os.path.join(args.datasets, "wikipedia", "enwiki_wikiextractor_2015", "wiki_*")))
    paths = paths[: args.files]
    size = sum(os.path.getsize(p) for p in paths)
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "vocab.txt")
        t0 = time.perf_counter()
        out = subprocess.run([args.bert, "vocab", "--input", *paths, "--vocab-size", str(args.vocab_size),
                              "--output", ours, "--threads", str(args.threads)],
                             check=True, capture_output=True, text=True).stdout
        bert_s = time.perf_counter() - t0
        plain = os.path.join(tmp, "plain.txt")
        with open(plain, "w", encoding="utf-8") as o:
            for p in paths:
                with open(p, encoding="utf-8") as f:
                    for line in f:
                        if not (line.startswith("<doc") or line.startswith("</doc>")):
                            o.write(line)
        hf = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
        t0 = time.perf_counter()
        hf.train([plain], vocab_size=args.vocab_size - 99, min_frequency=2, limit_alphabet=1000,
                 special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
        hf_s = time.perf_counter() - t0
        with open(ours, encoding="utf-8") as f:
            mine = [l.rstrip("\n") for l in f]
    learned = set(t for t in mine if not (t.startswith("[unused") and t.endswith("]")))
    theirs = set(hf.get_vocab())
    print(f"text: {len(paths)} files, {size / 1e6:.1f} MB; threads {args.threads}")
    print(out.strip())
    print(f"bert vocab: {bert_s:.2f} s (whole run), {len(mine)} tokens")
    print(f"HF WordPieceTrainer: {hf_s:.2f} s (train only), {len(theirs)} tokens")
    print(f"overlap: {len(learned & theirs)} of {len(theirs)} HF tokens ({100 * len(learned & theirs) / len(theirs):.1f} %)")


if __name__ == "__main__":
    main()
