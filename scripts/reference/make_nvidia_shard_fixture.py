#!/usr/bin/env python3
"""Writes small shards in NVIDIA's HDF5 layout with h5py, for the Swift reader's compatibility test.

  nvidia_layout_training_0.hdf5  NVIDIA's dtypes (i4, i1, i1, i4, i4, i1), gzip, from the reference
                                 algorithm on reference_input.txt (S = 64, P = 10, dupe factor 1)
  nvidia_wide_test_0.hdf5        the same rows stored as int64/int16/uint8 (other writers' widths), no compression
  nvidia_layout_expected.json    row count, shape and per-dataset sums and first rows for the test to compare

Usage: .venv-ref/bin/python scripts/reference/make_nvidia_shard_fixture.py [Tests/Fixtures/shards]
"""
import json
import os
import random
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import pretraining_data_reference as ref  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/shards"
tok = ref.PretokenizedTokenizer(f"{out}/reference_vocab.txt")
docs = ref.read_documents([f"{out}/reference_input.txt"], tok)[:12]
instances = ref.create_training_instances(docs, list(tok.vocab.keys()), random.Random(7), max_seq_length=64,
                                          dupe_factor=1, max_predictions_per_seq=10)
path = f"{out}/nvidia_layout_training_0.hdf5"
ref.write_hdf5(instances, tok.vocab, path, 64, 10)

widths = {"input_ids": "i8", "input_mask": "u1", "segment_ids": "i2", "masked_lm_positions": "i2",
          "masked_lm_ids": "i8", "next_sentence_labels": "i8"}
expected = {"vocab_size": len(tok.vocab)}
with h5py.File(path, "r") as f, h5py.File(f"{out}/nvidia_wide_test_0.hdf5", "w") as g:
    for name, dt in widths.items():
        data = f[name][()]
        g.create_dataset(name, data=data.astype(dt))
        expected[name] = {"shape": list(data.shape), "sum": int(data.astype(np.int64).sum()),
                          "first_row": data[0].tolist() if data.ndim == 2 else [int(data[0])]}
with open(f"{out}/nvidia_layout_expected.json", "w") as f:
    json.dump(expected, f, indent=1)
print({k: os.path.getsize(f"{out}/{k}") for k in ("nvidia_layout_training_0.hdf5", "nvidia_wide_test_0.hdf5")})
