#!/usr/bin/env python3
"""Fill rate of `bert pack` beside Graphcore's NNLSHP on the same length histogram.

Usage: packing_fill.py UNPACKED_DIR PACKED_DIR [--max-sequences-per-pack 3]

UNPACKED_DIR holds the *training*.hdf5 shards of `bert prepare` (NVIDIA's layout), PACKED_DIR those `bert pack`
made from them. The script reads the length histogram from the unpacked shards, solves non-negative least squares
histogram packing (NNLSHP: Krell et al. 2021, "Efficient sequence packing without cross-contamination"; written
here from the paper's description) for packs of at most K sequences, and prints one markdown table row each for
the unpacked data, NNLSHP and our packed shards: rows, sequences per row, fill rate = real tokens / (rows * S).
Needs numpy, scipy and h5py (e.g. a venv at /work/venv-pack).
"""
import argparse
import glob
import os
import time

import h5py
import numpy as np
from scipy import optimize


def shards(directory):
    paths = sorted(glob.glob(os.path.join(directory, "*training*.hdf5")))
    if not paths:
        raise SystemExit(f"{directory}: no *training*.hdf5 shards")
    return paths


def unpacked_lengths(directory):
    lengths, S = [], None
    for path in shards(directory):
        with h5py.File(path, "r") as f:
            mask = np.asarray(f["input_mask"][:])
            S = mask.shape[1]
            lengths.append(mask.sum(axis=1))
    return np.concatenate(lengths).astype(np.int64), S


def packed_figures(directory):
    rows = sequences = tokens = 0
    S = None
    for path in shards(directory):
        with h5py.File(path, "r") as f:
            mask = np.asarray(f["input_mask"][:])
            S = mask.shape[1]
            rows += mask.shape[0]
            tokens += int((mask > 0).sum())
            sequences += int(np.asarray(f["next_sentence_weights"][:]).sum())
    return rows, sequences, tokens, S


def strategies(S, K):
    """Every multiset of at most K lengths in 1..S that sums to exactly S (ascending lengths)."""
    out = []

    def extend(prefix, smallest, left, depth):
        if depth == 1:
            if left >= smallest:
                out.append(prefix + [left])
            return
        for new in range(smallest, left + 1):
            if new == left:
                out.append(prefix + [new])
            else:
                extend(prefix + [new], new, left - new, depth - 1)

    extend([], 1, S, K)
    return out


def nnlshp(lengths, S, K):
    """Rows and padding tokens of NNLSHP for this histogram: NNLS over the exact-fill strategies, rounded, the
    deficit made up with padding "sequences", repeated; what is left goes one per row with its complement as padding."""
    histogram = np.bincount(lengths, minlength=S + 1)[1:]
    plans = strategies(S, K)
    A = np.zeros((S, len(plans)))
    for i, plan in enumerate(plans):
        for L in plan:
            A[L - 1, i] += 1
    # Short lengths are cheap to pad: weight their residual down (the paper's weighting).
    w = np.ones(S)
    cutoff = 8
    w[:cutoff] = cutoff / (2 * S)
    w = np.sqrt(w)
    mixture = np.zeros(len(plans))
    padding = np.zeros(S)
    b = histogram.astype(np.float64)
    for _ in range(20):
        x, _ = optimize.nnls(w[:, None] * A, w * b)
        x = np.where(x < 2, np.rint(x), np.floor(x))
        if x.max() == 0:
            break
        mixture += x
        residual = b - A @ x
        padding += np.where(residual < 0, -residual, 0)
        b = histogram + padding - A @ mixture
        if b.sum() < 100:
            break
    for L in np.nonzero(b > 0)[0] + 1:
        plan = sorted([int(L), S - int(L)]) if L < S else [S]
        mixture[plans.index(plan)] += b[L - 1]
    b = histogram - A @ mixture
    padding = np.where(b < 0, -b, 0)
    rows = int(mixture.sum())
    padding_tokens = int((np.arange(1, S + 1) * padding).sum())
    return rows, padding_tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("unpacked")
    parser.add_argument("packed")
    parser.add_argument("--max-sequences-per-pack", type=int, default=3)
    args = parser.parse_args()
    K = args.max_sequences_per_pack
    lengths, S = unpacked_lengths(args.unpacked)
    n, tokens = len(lengths), int(lengths.sum())
    start = time.time()
    rows, pad = nnlshp(lengths, S, K)
    took = time.time() - start
    ours_rows, ours_sequences, ours_tokens, ours_S = packed_figures(args.packed)
    assert ours_S == S and ours_sequences == n and ours_tokens == tokens, "packed shards do not hold the same sequences"
    print(f"| S | packer | rows | sequences per row | fill rate |")
    print(f"|---|---|---|---|---|")
    print(f"| {S} | unpacked | {n} | 1.000 | {tokens / (n * S):.4f} |")
    print(f"| {S} | NNLSHP (K={K}, {took:.1f} s) | {rows} | {n / rows:.3f} | {(rows * S - pad) / (rows * S):.4f} |")
    print(f"| {S} | bert pack (K={K}) | {ours_rows} | {n / ours_rows:.3f} | {tokens / (ours_rows * S):.4f} |")


if __name__ == "__main__":
    main()
