#!/usr/bin/env python3
"""Checks that shards written by `bert prepare` load in h5py exactly as NVIDIA's loader expects them.

For every file: the six datasets with exactly NVIDIA's dtypes (input_ids i4, input_mask i1, segment_ids i1,
masked_lm_positions i4, masked_lm_ids i4, next_sentence_labels i1), gzip-compressed and chunked, consistent
shapes, and values as NVIDIA's `pretraining_dataset` reads them: [CLS] first, the mask a prefix of ones,
segment ids 0 then 1 inside the mask, ids below the vocabulary size, positions sorted and inside the mask,
labels 0/1. Prints one line per file and exits non-zero on the first problem.

Usage: .venv-ref/bin/python scripts/reference/check_shards_h5py.py --vocab-size 30522 DIR_OR_FILES...
"""
import argparse
import glob
import os
import sys

import h5py
import numpy as np

DTYPES = {"input_ids": "int32", "input_mask": "int8", "segment_ids": "int8",
          "masked_lm_positions": "int32", "masked_lm_ids": "int32", "next_sentence_labels": "int8"}


def check(path, vocab_size, cls_id):
    with h5py.File(path, "r") as f:
        for name, dt in DTYPES.items():
            d = f[name]
            assert d.dtype == np.dtype(dt), f"{name} dtype {d.dtype}, expected {dt}"
            assert d.compression == "gzip" and d.chunks is not None, f"{name} not gzip/chunked"
        ids, mask, seg = f["input_ids"][()], f["input_mask"][()], f["segment_ids"][()]
        pos, mid, nsp = f["masked_lm_positions"][()], f["masked_lm_ids"][()], f["next_sentence_labels"][()]
    n, s = ids.shape
    p = pos.shape[1]
    assert mask.shape == seg.shape == (n, s) and mid.shape == (n, p) and nsp.shape == (n,)
    assert ((ids >= 0) & (ids < vocab_size)).all() and ((mid >= 0) & (mid < vocab_size)).all()
    assert set(np.unique(nsp)) <= {0, 1} and set(np.unique(seg)) <= {0, 1} and set(np.unique(mask)) <= {0, 1}
    lengths = mask.sum(axis=1)
    for r in range(n):
        L = lengths[r]
        assert (mask[r, :L] == 1).all() and (mask[r, L:] == 0).all(), f"row {r}: mask not a prefix"
        assert ids[r, 0] == cls_id and (ids[r, L:] == 0).all(), f"row {r}: layout"
        sr = seg[r, :L]
        assert sr[0] == 0 and sr[-1] == 1 and (np.diff(sr) >= 0).all() and (seg[r, L:] == 0).all(), f"row {r}: segments"
        k = int(np.argmax(pos[r] == 0)) if (pos[r] == 0).any() else p   # NVIDIA: the first 0 ends the list
        assert k >= 1 and (pos[r, k:] == 0).all() and (mid[r, k:] == 0).all(), f"row {r}: padding of predictions"
        assert (np.diff(pos[r, :k]) > 0).all() and pos[r, k - 1] < L, f"row {r}: positions"
    masked = int((pos > 0).sum())
    print(f"{os.path.basename(path)}: ok  N={n} S={s} P={p}  dtypes {', '.join(DTYPES[k] for k in DTYPES)}  "
          f"gzip+chunked  tokens/row {lengths.mean():.1f}  masked/row {masked / n:.2f}  NSP random {nsp.mean():.3f}")
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--cls-id", type=int, default=101)
    a = ap.parse_args()
    files = []
    for x in a.paths:
        files += sorted(glob.glob(os.path.join(x, "*.hdf5"))) if os.path.isdir(x) else [x]
    total = sum(check(f, a.vocab_size, a.cls_id) for f in files)
    print(f"{len(files)} files, {total} rows: all load in h5py {h5py.__version__} with NVIDIA's dtypes")


if __name__ == "__main__":
    sys.exit(main())
