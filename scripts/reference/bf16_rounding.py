#!/usr/bin/env python3
"""Reference fp32 → bf16 rounding, for the CUDA kernels' bs_bf16_from_float (Sources/BERTCUDA/Kernels/bert_shared.cuh).

Writes Tests/Fixtures/cuda/bf16_rounding.json: {"inputs": [fp32 bit patterns], "bf16": [bf16 bit patterns]}, where
bf16[i] is torch.tensor(input, dtype=float32).to(torch.bfloat16) — PyTorch's round-to-nearest-even (c10::BFloat16),
the rounding __float2bfloat16_rn does on the GPU. The inputs cover exact ties (both parities), values just off a tie,
the largest finite floats (which round to infinity), subnormals, ±0, ±inf, NaNs with several payloads, and a
deterministic spread of random bit patterns. Run with the reference venv (torch): python3 scripts/reference/bf16_rounding.py
"""
import json
import os
import random

import numpy as np
import torch

def main():
    inputs = set()
    for high in [0x0000, 0x0001, 0x3F80, 0x3F81, 0x4049, 0x7F7F, 0x7F80, 0x8000, 0xBF80, 0xFF7F, 0x0080, 0x007F]:
        for low in [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF]:
            inputs.add((high << 16) | low)
    inputs.update([0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF, 0x00000000, 0x80000000])
    rng = random.Random(20240915)
    inputs.update(rng.getrandbits(32) for _ in range(2000))
    inputs = sorted(inputs)
    floats = torch.from_numpy(np.array(inputs, dtype=np.uint32).view(np.float32))
    bf16 = floats.to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16)
    out = {"inputs": inputs, "bf16": [int(b) for b in bf16]}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "cuda", "bf16_rounding.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {len(inputs)} cases to {os.path.normpath(path)}")

if __name__ == "__main__":
    main()
