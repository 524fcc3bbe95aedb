#!/usr/bin/env python3
"""Reference learning-rate schedules for BERT pre-training and fine-tuning.

Writes Tests/Fixtures/schedules/schedules.json: a list of
    {"name", "kind", "base_lr", "warmup_proportion" | "warmup_steps", "total_steps", ["degree"], "lrs"}
where lrs[k] is the learning rate used by the k-th optimizer update (k = 0-based, k = 0 .. total_steps-1),
written as Python floats (shortest repr that round-trips the float64 value).

Rules, re-derived from the original code (read, not copied):

poly_warmup   NVIDIA DeepLearningExamples PyTorch/LanguageModeling/BERT/schedulers.py, PolyWarmUpScheduler,
              as run_pretraining.py drives it (lr_scheduler.step() is called right BEFORE optimizer.step()).
              Its step() ignores the _LRScheduler counter: it sets last_epoch = param_group['step'] + 1, where
              param_group['step'] is the optimizer's count of completed updates (FusedLAMB creates it on its
              first step), or last_epoch = 1 while the key does not exist yet (also the call made by the
              constructor). So the k-th update (0-based) runs with
                  p  = (k + 1) / total_steps
                  lr = base * p / warmup           if p < warmup        (strict <)
                       base * (1 - p) ** degree    otherwise            (degree 0.5 by default)
              Consequences: the first update already has lr = base/(warmup*total) (never 0); with warmup 0 the
              warm-up branch is never taken (no division by zero); the last update (k = total-1, p = 1) runs
              with lr = 0; at the boundary p == warmup (e.g. k=1 for total 20, warmup 0.1: 2/20 == 0.1) the
              decay branch is taken. Evaluated here in float64. The current NVIDIA version holds warmup,
              total_steps, degree and base_lr in torch tensors (torch.tensor(0.1) is float32) and uses torch.where;
              that evaluates the same formula in float32 (relative differences up to ~1e-7, reported below).
              Habana's deepspeed-bert run_pretraining.py uses a PolyWarmUpScheduler(warmup, total_steps, degree,
              constant) with --scheduler_degree defaulting to 1.0; its schedulers.py was not available to read,
              so only the degree is varied here (poly_warmup entries with degree 1.0) and the "constant" phase is
              not ported.
linear_warmup HF transformers optimization.py get_linear_schedule_with_warmup (LambdaLR; scheduler.step() after
              optimizer.step(), so update k uses lambda(k)):
                  lr = base * k / max(1, W)                              if k < W
                       base * max(0, (total - k) / max(1, total - W))   otherwise
              The first update has lr 0 when W > 0. W from a proportion r is ceil(total * r) (TrainingArguments.
              get_warmup_steps): 0.1 * 20 -> 2, 0.2843 * 20 -> 6.
constant_warmup HF get_constant_schedule_with_warmup: lr = base * k / max(1, W) if k < W else base.

The HF entries are also computed with the installed transformers (a LambdaLR stepped after a real optimizer
step) and must agree exactly.

Run from the repository root:
    .venv-ref/bin/python scripts/reference/schedules.py        (optionally --out DIR)
"""

import argparse
import json
import math
import os

import torch

TOTAL = 20


def poly_warmup(base, warmup, total, degree):
    lrs = []
    for k in range(total):
        p = (k + 1) / total
        lrs.append(base * p / warmup if p < warmup else base * (1.0 - p) ** degree)
    return lrs


def poly_warmup_f32_tensors(base, warmup, total, degree):
    """The same rule with the current NVIDIA class's tensor types (float32 warmup/degree/base, int64 total)."""
    w, tot, deg, b = torch.tensor(warmup), torch.tensor(total), torch.tensor(degree), torch.tensor(base)
    out = []
    for k in range(total):
        last = torch.tensor(float(k + 1))
        p = last / tot
        out.append(float(torch.where(p < w, b * p / w, b * ((1.0 - p) ** deg))))
    return out


def linear_warmup(base, w, total):
    return [base * (k / max(1, w)) if k < w else base * max(0.0, (total - k) / max(1, total - w)) for k in range(total)]


def constant_warmup(base, w, total):
    return [base * (k / max(1.0, w)) if k < w else base for k in range(total)]


def hf_reference(kind, base, w, total):
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    if kind == "linear_warmup":
        sched = get_linear_schedule_with_warmup(opt, w, total)
    else:
        sched = get_constant_schedule_with_warmup(opt, w)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])  # the lr this update uses
        p.grad = torch.zeros(1)
        opt.step()
        sched.step()
    return lrs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "Tests", "Fixtures", "schedules"))
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    entries = []
    worst32 = 0.0
    for base, warmup, degree in [(6e-3, 0.1, 0.5), (6e-3, 0.2843, 0.5), (6e-3, 0.0, 0.5),
                                 (4e-3, 0.1, 1.0), (4e-3, 0.2843, 1.0)]:
        lrs = poly_warmup(base, warmup, TOTAL, degree)
        ref32 = poly_warmup_f32_tensors(base, warmup, TOTAL, degree)
        for a, b in zip(lrs, ref32):
            if a != 0.0:
                worst32 = max(worst32, abs(a - b) / abs(a))
            else:
                assert b == 0.0
        entries.append({"name": f"poly_warmup_w{warmup}_d{degree}", "kind": "poly_warmup", "base_lr": base,
                        "warmup_proportion": warmup, "total_steps": TOTAL, "degree": degree, "lrs": lrs})
    print(f"poly_warmup: float64 vs float32-tensor evaluation, max relative difference {worst32:.3g}")

    for ratio in [0.1, 0.2843, 0.0]:
        w = math.ceil(TOTAL * ratio)
        for kind, fn in [("linear_warmup", linear_warmup), ("constant_warmup", constant_warmup)]:
            base = 1e-4
            lrs = fn(base, w, TOTAL)
            ref = hf_reference(kind, base, w, TOTAL)
            assert lrs == ref, (kind, ratio, lrs, ref)
            entries.append({"name": f"{kind}_ws{w}", "kind": kind, "base_lr": base, "warmup_steps": w,
                            "total_steps": TOTAL, "lrs": lrs})
    print("linear_warmup / constant_warmup: identical to transformers' LambdaLR schedules")

    for e in entries:
        assert len(e["lrs"]) == e["total_steps"] and all(isinstance(x, float) for x in e["lrs"])
    path = os.path.join(out_dir, "schedules.json")
    with open(path, "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")
    # json writes repr(float): check the values round-trip exactly
    with open(path) as f:
        back = json.load(f)
    assert back == entries
    print(f"wrote {path} ({len(entries)} schedules)")


if __name__ == "__main__":
    main()
