#!/usr/bin/env python3
"""`bert prepare` (release build) against the single-process Python port of Google's create_pretraining_data.py
(scripts/reference/pretraining_data_reference.py `run`, h5py output) on the same text.

Both read WikiExtractor files, tokenize with the same vocabulary (lower-cased), make instances with the
default flags (S 128, P 20, masked-LM 0.15, dupe factor 5, short-seq 0.1, seed 12345) and write NVIDIA-layout
HDF5. Reports wall time, MB/s and the speed ratio, plus both sides' instance statistics.

Usage: .venv-ref/bin/python bench/prepare_speed.py [--files 4] [--threads 2] [--bert .build/release/bert]
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKI = "/work/shared/datasets/wikipedia/enwiki_wikiextractor_2015"
VOCAB = "/work/shared/datasets/bert/bert-base-uncased-vocab.txt"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4, help="how many wiki_NN files (about 1 MB each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bert", default=os.path.join(ROOT, ".build/release/bert"))
    ap.add_argument("--wiki", default=WIKI)
    ap.add_argument("--vocab", default=VOCAB)
    ap.add_argument("--skip-python", action="store_true", help="reuse the Python time given by --python-seconds")
    ap.add_argument("--python-seconds", type=float)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.wiki, "wiki_*")))[:a.files]
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    out = tempfile.mkdtemp(prefix="prepare-bench-")
    try:
        cmd = [a.bert, "prepare", "--input", *files, "--vocab-file", a.vocab, "--output-dir", out + "/swift",
               "--input-format", "wikiextractor", "--threads", str(a.threads), "--num-shards", "1"]
        t0 = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True)
        swift_s = time.time() - t0
        if res.returncode != 0:
            sys.exit(f"bert prepare failed:\n{res.stderr}")
        swift_summary = [l for l in res.stdout.splitlines() if l.startswith(("prepare:", "training:"))]
        if a.skip_python:
            py_s, py_stats = a.python_seconds, None
        else:
            cmd = [sys.executable, os.path.join(ROOT, "scripts/reference/pretraining_data_reference.py"), "run",
                   "--input", *files, "--vocab", a.vocab, "--format", "wikiextractor", "--output", out + "/python.hdf5"]
            t0 = time.time()
            res = subprocess.run(cmd, capture_output=True, text=True)
            py_s = time.time() - t0
            if res.returncode != 0:
                sys.exit(f"python reference failed:\n{res.stderr}")
            py_stats = json.loads(res.stdout)
        print(f"input: {len(files)} WikiExtractor files, {mb:.2f} MB; vocab {os.path.basename(a.vocab)}; "
              f"defaults S=128 P=20 dupe 5 seed 12345")
        print(f"bert prepare (release, --threads {a.threads}): {swift_s:7.2f} s  {mb / swift_s:7.2f} MB/s")
        for l in swift_summary:
            print("  " + l)
        if py_s:
            print(f"python reference (1 process):       {py_s:7.2f} s  {mb / py_s:7.2f} MB/s")
            if py_stats:
                print(f"  python: {py_stats['instances']} instances, {py_stats['documents']} documents, "
                      f"{py_stats['mean_tokens']:.1f} tokens/instance, masked {100 * py_stats['masked_fraction']:.2f}%, "
                      f"NSP random {100 * py_stats['nsp_random_fraction']:.1f}%")
            print(f"speed ratio: {py_s / swift_s:.1f}x")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
