#!/usr/bin/env python3
"""`bert prepare` (release build) against the single-process Python port of Google's create_pretraining_data.py
(scripts/reference/pretraining_data_reference.py `run`, h5py output) on the same text.

Both read WikiExtractor files, tokenize with the same vocabulary (lower-cased), make instances with the
default flags (S 128, P 20, masked-LM 0.15, dupe factor 5, short-seq 0.1, seed 12345) and write NVIDIA-layout
HDF5. Reports wall time, MB/s and the speed ratio, plus both sides' instance statistics.

Usage: .venv-ref/bin/python bench/prepare_speed.py [--files 4] [--threads 2] [--repeat 3] [--variants default,level1,level4]
"""
import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIKI = "/work/shared/datasets/wikipedia/enwiki_wikiextractor_2015"
VOCAB = "/work/shared/datasets/bert/bert-base-uncased-vocab.txt"


def timed(cmd, env=None):
    """Runs cmd; returns (wall seconds, child CPU seconds, completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{res.stderr}")
    return wall, cpu, res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4, help="how many wiki_NN files (about 1 MB each)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each side; the fastest counts")
    ap.add_argument("--variants", default="default,level1,level4",
                    help="bert prepare variants: default (--compression-level fast, run-length deflate), level1 / "
                         "level4 (gzip level 1, or 4 as h5py; libdeflate when present), zlib1 / zlib4 (the same "
                         "through zlib: BERT_DEFLATE=zlib)")
    ap.add_argument("--bert", default=os.path.join(ROOT, ".build/release/bert"))
    ap.add_argument("--wiki", default=WIKI)
    ap.add_argument("--vocab", default=VOCAB)
    a = ap.parse_args()
    files = sorted(glob.glob(os.path.join(a.wiki, "wiki_*")))[:a.files]
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    out = tempfile.mkdtemp(prefix="prepare-bench-")
    print(f"input: {len(files)} WikiExtractor files, {mb:.2f} MB; vocab {os.path.basename(a.vocab)}; "
          f"defaults S=128 P=20 dupe 5 seed 12345; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    try:
        variants = a.variants.split(",")
        swift_runs = {v: [] for v in variants}
        py_runs = []
        # Interleaved, so a burst of load from other processes hits both sides alike; the fastest run counts.
        for r in range(a.repeat):
            for level in variants:
                env = dict(os.environ)
                extra = []
                if level.startswith("zlib"):
                    env["BERT_DEFLATE"] = "zlib"
                if level[-1].isdigit():
                    extra = ["--compression-level", level[-1]]
                shutil.rmtree(out + "/swift", ignore_errors=True)
                cmd = [a.bert, "prepare", "--input", *files, "--vocab-file", a.vocab, "--output-dir", out + "/swift",
                       "--input-format", "wikiextractor", "--threads", str(a.threads), "--num-shards", "1", *extra]
                w, c, res = timed(cmd, env)
                size = sum(os.path.getsize(os.path.join(out, "swift", f))
                           for f in os.listdir(out + "/swift") if f.endswith(".hdf5"))
                swift_runs[level].append((w, c, res, size))
            cmd = [sys.executable, os.path.join(ROOT, "scripts/reference/pretraining_data_reference.py"), "run",
                   "--input", *files, "--vocab", a.vocab, "--format", "wikiextractor", "--output", out + "/python.hdf5"]
            py_runs.append(timed(cmd))
        best = {}
        for level, runs in swift_runs.items():
            wall, cpu, res, size = min(runs, key=lambda x: x[0])
            best[level] = (wall, cpu)
            print(f"bert prepare (release, --threads {a.threads}, {level}): best {wall:6.2f} s wall "
                  f"({', '.join(f'{x[0]:.2f}' for x in runs)}), {cpu:5.2f} s CPU, {mb / wall:6.2f} MB/s, "
                  f"shard {size / 1e6:.1f} MB")
            for l in res.stdout.splitlines():
                if l.startswith(("time:", "training:")):
                    print("    " + l)
        wall, cpu, res = min(py_runs, key=lambda x: x[0])
        st = json.loads(res.stdout)
        print(f"python reference (1 process, h5py gzip 4): best {wall:6.2f} s wall "
              f"({', '.join(f'{x[0]:.2f}' for x in py_runs)}), {cpu:5.2f} s CPU, {mb / wall:6.2f} MB/s, "
              f"file {os.path.getsize(out + '/python.hdf5') / 1e6:.1f} MB")
        print(f"    python: {st['instances']} instances, {st['documents']} documents, {st['mean_tokens']:.1f} tokens "
              f"per instance, masked {100 * st['masked_fraction']:.2f}% of tokens, NSP random "
              f"{100 * st['nsp_random_fraction']:.1f}%")
        for level, (w, c) in best.items():
            print(f"speed ratio, {level}: {wall / w:.1f}x wall (best vs best), {cpu / c:.1f}x CPU")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
