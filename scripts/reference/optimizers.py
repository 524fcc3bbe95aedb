#!/usr/bin/env python3
"""Reference optimizer steps for BERT pre-training, written out step by step in float32 torch ops.

Writes Tests/Fixtures/optimizers/<variant>.safetensors for the variants lamb, nvlamb, lans, adamw, adamw_nobc.
Each rule was re-derived from the original code named below (read, not copied):

lamb    NVIDIA apex `apex/optimizers/fused_lamb.py` (FusedLAMB.step) and `csrc/multi_tensor_lamb.cu`
        (LAMBStage1Functor / LAMBStage2Functor / multi_tensor_lamb_cuda), as NVIDIA DeepLearningExamples
        `PyTorch/LanguageModeling/BERT/run_pretraining.py` builds it: FusedLAMB(groups, lr) with the defaults
        betas (0.9, 0.999), eps 1e-6, weight_decay per group (0.01 / 0.0), bias_correction True,
        grad_averaging True, adam_w_mode True, max_grad_norm 1.0, use_nvlamb False.
          norm   = global L2 norm of all raw gradients (one norm over every tensor of every group)
          g      = g / (norm / max_grad_norm)   if norm > max_grad_norm   else g      (a division, as the kernel)
          m      = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g*g
          u      = (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd*w          (eps outside the sqrt)
          ratio  = lr * (||w|| / ||u||)  if (wd != 0 or nvlamb) and ||w|| != 0 and ||u|| != 0  else lr
          w      = w - ratio*u          (||w|| is the norm before this step's update)
        The kernel's scalars are C++ floats: beta3 = 1.0f - b1 and (1 - b2) are float32 differences, and the
        bias corrections are float(1 - pow(double(float(b)), t)); this script does the same.
nvlamb  the same with use_nvlamb=True: the trust ratio is applied to every tensor, including bias/LayerNorm.
lans    HabanaAI Model-References `PyTorch/nlp/pretraining/deepspeed-bert/lans.py` (class LANS), Zheng et al.
        2020, "Accelerated Large Batch Optimization of BERT Pretraining in 54 minutes".
          clip   = max(norm / max_grad_norm, 1)   (only when max_grad_norm > 0);  g = g / clip
          g^     = g / (||g|| + eps)   per tensor (g^ = g when ||g|| == 0)
          m      = b1*m + (1-b1)*g^ ;  v = b2*v + (1-b2)*g^*g^
          d      = sqrt(v / (1-b2^t)) + eps
          r      = (m / (1-b1^t)) / d + wd*w ;   c = g^ / d + wd*w
          w      = w - [ b1 * lr*(||w||/||r||) * r  +  (1-b1) * lr*(||w||/||c||) * c ]
                   (each lr*(||w||/||.||) falls back to lr when that norm or ||w|| is 0)
        Trust ratios apply to every tensor; weight decay is the group's (0 for bias/LayerNorm). Bias correction
        uses Python-float powers (t = optimizer step, 1-based; adjust_step False).
        Clipping: the class clips internally only if max_grad_norm > 0 (default 0.0), and Habana's
        deepspeed-bert run_pretraining.py constructs it with max_grad_norm=0. and eps=1e-6; the global clip there
        comes from DeepSpeed's "gradient_clipping": 1.0 (scripts/deepspeed_config_bert_5b_lans.json), which
        divides by ((norm + 1e-6) / 1.0) when that exceeds 1. This fixture uses the class's own rule with
        max_grad_norm = 1.0 (divide by max(norm, 1)); the DeepSpeed form differs by a relative 1e-6 in the clip
        factor, and LANS is nearly insensitive to it anyway because each tensor's gradient is normalised
        (only the eps in ||g|| + eps sees the scale).
adamw   torch.optim.AdamW (torch/optim/adamw.py, _single_tensor_adam with decoupled decay) after
        torch.nn.utils.clip_grad_norm_(params, 1.0):
          clip   = min(1, max_norm / (norm + 1e-6));  g = g * clip   (torch adds 1e-6 and always multiplies)
          w      = w * (1 - lr*wd)                    (decay first, on the pre-step weights)
          m      = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g*g
          w      = w - (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
        Checked below against torch.optim.AdamW + clip_grad_norm_ over the same 5 steps.
adamw_nobc  Google BERT `optimization.py` AdamWeightDecayOptimizer after tf.clip_by_global_norm(grads, 1.0):
          g      = g * 1.0 / max(norm, 1.0)
          m      = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g*g
          w      = w - lr * (m / (sqrt(v) + eps) + wd*w)      (no bias correction)
        exclude_from_weight_decay = ["LayerNorm", "layer_norm", "bias"] (same tensors as below).

No-decay rule (NVIDIA run_pretraining.py, Habana run_pretraining.py): weight_decay 0.0 for every tensor whose
name contains "bias", "gamma", "beta" or "LayerNorm"; 0.01 otherwise. Only "bias" and "LayerNorm" occur here.

Fixture contents (all F32), t = 1..5:
  param.<name>          initial parameters
  grad.<t>.<name>       raw (unclipped) gradient given to step t
  grad_norm.<t>         [1] global L2 norm of the raw gradient of step t (sqrt of the sum of squared per-tensor norms)
  expected.<t>.<name>   parameters after step t
  m.5.<name>, v.5.<name>  first / second moments after step 5, as each optimizer stores them
                        (LANS: moments of the per-tensor-normalised gradient; none are bias-corrected)
__metadata__ (strings): variant, source, beta1, beta2, eps, weight_decay, max_grad_norm, clip_rule,
  learning_rates, no_decay_rule, bias_correction, trust_ratio, steps, param_names.

NVIDIA apex cannot be installed here (no PyPI release: the PyPI name "apex" is an unrelated project; FusedLAMB
needs the CUDA extensions amp_C built from source and raises without them), so lamb/nvlamb are not cross-checked
against apex itself. adamw is cross-checked against torch.optim.AdamW, and every variant against an independent
float64 evaluation of the formulas above (parameters within 1e-6 relative).

Run from the repository root:
    .venv-ref/bin/python scripts/reference/optimizers.py        (optionally --out DIR)
Deterministic: fixed seed, one thread; re-running rewrites identical files.
"""

import argparse
import json
import math
import os
import struct

import numpy as np
import torch
from safetensors.torch import load_file

F32 = torch.float32
BETA1, BETA2, EPS, WD, MAX_NORM = 0.9, 0.999, 1e-6, 0.01, 1.0
LRS = [1e-2, 2e-2, 3e-2, 2e-2, 1e-2]
# Target global norms of the raw gradients: above 1 on steps 1, 3, 5 (clipping engaged), below on 2, 4.
GRAD_NORMS = [3.0, 0.6, 2.2, 0.45, 5.0]
NO_DECAY = ("bias", "gamma", "beta", "LayerNorm")
SHAPES = [
    ("encoder.dense.weight", (8, 6)),
    ("encoder.dense.bias", (8,)),
    ("encoder.LayerNorm.weight", (6,)),
    ("encoder.LayerNorm.bias", (6,)),
    ("embeddings.word_embeddings.weight", (10, 6)),
    ("head.weight", (3, 8)),
]
NAMES = [n for n, _ in SHAPES]


def decays(name):
    return not any(nd in name for nd in NO_DECAY)


def weight_decay(name):
    return WD if decays(name) else 0.0


def f32(x):
    """Round a Python number to the nearest float32 and return it as a Python float."""
    return float(np.float32(x))


def make_problem(seed=1234):
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in SHAPES:
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        if name == "encoder.LayerNorm.weight":
            t = 1.0 + 0.1 * z
        elif name.endswith("bias"):
            t = 0.1 * z
        else:
            t = 0.5 * z
        params[name] = t.to(F32)
    grads = []
    for target in GRAD_NORMS:
        raw = {name: torch.randn(shape, generator=g, dtype=torch.float64) for name, shape in SHAPES}
        total = math.sqrt(sum(float((r * r).sum()) for r in raw.values()))
        grads.append({name: (r * (target / total)).to(F32) for name, r in raw.items()})
    return params, grads


def global_norm(grads):
    """Global L2 norm in float32: the norm of the per-tensor norms (as clip_grad_norm_ and apex l2norm)."""
    per = torch.stack([torch.linalg.vector_norm(grads[n]) for n in NAMES])
    return torch.linalg.vector_norm(per)


# --------------------------------------------------------------------------------------------------------------
# Optimizers. Each takes (params, grads_per_step) and returns (list of param dicts after each step, m, v).


def lamb_step(w, m, v, grads, lr, t, nvlamb=False, names=None, decays=decays):
    """One LAMB update (apex FusedLAMB, as above) of the float32 tensors in the dicts `w`, `m`, `v`, in place.

    `t` is the 1-based optimizer step, `lr` this step's learning rate, `decays(name)` whether a tensor gets weight
    decay (and so the trust ratio, unless `nvlamb`). Also used by bench/pretrain_compare.py's PyTorch trainer.
    """
    names = list(w) if names is None else names
    b1, b2 = f32(BETA1), f32(BETA2)
    beta3 = f32(np.float32(1.0) - np.float32(b1))  # 1 - beta1 in float (grad_averaging)
    one_m_b2 = f32(np.float32(1.0) - np.float32(b2))
    eps = f32(EPS)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grads[n]) for n in names]))
    clip = norm / MAX_NORM if float(norm) > MAX_NORM else torch.ones((), dtype=F32)
    bc1 = f32(1.0 - math.pow(b1, t))
    bc2 = f32(1.0 - math.pow(b2, t))
    for n in names:
        wd = f32(WD if decays(n) else 0.0)
        p = w[n]
        p_norm = torch.linalg.vector_norm(p)  # before the update
        g = grads[n] / clip
        m[n] = m[n] * b1 + g * beta3
        v[n] = v[n] * b2 + (g * g) * one_m_b2
        m_hat = m[n] / bc1
        v_hat = v[n] / bc2
        upd = m_hat / (torch.sqrt(v_hat) + eps)
        if wd != 0.0:
            upd = upd + p * wd
        u_norm = torch.linalg.vector_norm(upd)
        ratio = torch.tensor(lr, dtype=F32)
        if (nvlamb or wd != 0.0) and float(u_norm) != 0.0 and float(p_norm) != 0.0:
            ratio = ratio * (p_norm / u_norm)
        p.sub_(ratio * upd)  # in place: the caller's tensors (a model's parameters) are updated
    return norm


def run_lamb(params, grads_per_step, nvlamb):
    w = {n: params[n].clone() for n in NAMES}
    m = {n: torch.zeros_like(w[n]) for n in NAMES}
    v = {n: torch.zeros_like(w[n]) for n in NAMES}
    out = []
    for t, (lr, grads) in enumerate(zip(LRS, grads_per_step), start=1):
        lamb_step(w, m, v, grads, lr, t, nvlamb, names=NAMES)
        out.append({n: w[n].clone() for n in NAMES})
    return out, m, v


def run_lans(params, grads_per_step):
    w = {n: params[n].clone() for n in NAMES}
    m = {n: torch.zeros_like(w[n]) for n in NAMES}
    v = {n: torch.zeros_like(w[n]) for n in NAMES}
    beta3 = 1.0 - BETA1
    out = []
    for t, (lr, grads) in enumerate(zip(LRS, grads_per_step), start=1):
        sq = torch.zeros(1, dtype=F32)
        for n in NAMES:  # LANS accumulates sum of squares over all tensors, then sqrt
            sq = sq + grads[n].pow(2).sum()
        clip = torch.maximum(torch.sqrt(sq) / MAX_NORM, torch.ones(1, dtype=F32))
        bc1 = 1.0 - BETA1**t
        bc2 = 1.0 - BETA2**t
        new_w = {}
        for n in NAMES:
            wd = weight_decay(n)
            p = w[n]
            g = grads[n] / clip
            g_norm = torch.linalg.vector_norm(g)
            g_hat = g / (g_norm + EPS) if float(g_norm) != 0.0 else g
            m[n] = m[n] * BETA1 + g_hat * beta3
            v[n] = v[n] * BETA2 + (g_hat * g_hat) * (1.0 - BETA2)
            m_hat = m[n] / bc1
            v_hat = v[n] / bc2
            w_norm = torch.linalg.vector_norm(p)
            denom = torch.sqrt(v_hat) + EPS
            r = m_hat / denom + p * wd
            c = g_hat / denom + p * wd
            r_norm = torch.linalg.vector_norm(r)
            c_norm = torch.linalg.vector_norm(c)
            lr_t = torch.tensor(lr, dtype=F32)
            ok_w = float(w_norm) != 0.0
            ratio_m = lr_t * (w_norm / r_norm) if (float(r_norm) != 0.0 and ok_w) else lr_t
            ratio_g = lr_t * (w_norm / c_norm) if (float(c_norm) != 0.0 and ok_w) else lr_t
            step = r * ratio_m * BETA1 + c * ratio_g * beta3
            new_w[n] = p + (-step)
        w = new_w
        out.append({n: w[n].clone() for n in NAMES})
    return out, m, v


def run_adamw(params, grads_per_step):
    w = {n: params[n].clone() for n in NAMES}
    m = {n: torch.zeros_like(w[n]) for n in NAMES}
    v = {n: torch.zeros_like(w[n]) for n in NAMES}
    out = []
    for t, (lr, grads) in enumerate(zip(LRS, grads_per_step), start=1):
        norm = global_norm(grads)
        coef = torch.clamp(MAX_NORM / (norm + 1e-6), max=1.0)
        bc1 = 1.0 - BETA1**t
        bc2 = 1.0 - BETA2**t
        new_w = {}
        for n in NAMES:
            wd = weight_decay(n)
            g = grads[n] * coef
            p = w[n] * (1.0 - lr * wd)
            m[n] = m[n] * BETA1 + g * (1.0 - BETA1)
            v[n] = v[n] * BETA2 + (g * g) * (1.0 - BETA2)
            denom = torch.sqrt(v[n]) / math.sqrt(bc2) + EPS
            new_w[n] = p - (lr / bc1) * (m[n] / denom)
        w = new_w
        out.append({n: w[n].clone() for n in NAMES})
    return out, m, v


def run_adamw_nobc(params, grads_per_step):
    w = {n: params[n].clone() for n in NAMES}
    m = {n: torch.zeros_like(w[n]) for n in NAMES}
    v = {n: torch.zeros_like(w[n]) for n in NAMES}
    out = []
    for lr, grads in zip(LRS, grads_per_step):
        norm = global_norm(grads)
        scale = MAX_NORM / torch.maximum(norm, torch.tensor(MAX_NORM, dtype=F32))
        new_w = {}
        for n in NAMES:
            wd = weight_decay(n)
            g = grads[n] * scale
            m[n] = m[n] * BETA1 + g * (1.0 - BETA1)
            v[n] = v[n] * BETA2 + (g * g) * (1.0 - BETA2)
            upd = m[n] / (torch.sqrt(v[n]) + EPS)
            if wd != 0.0:
                upd = upd + w[n] * wd
            new_w[n] = w[n] - lr * upd
        w = new_w
        out.append({n: w[n].clone() for n in NAMES})
    return out, m, v


# --------------------------------------------------------------------------------------------------------------


def check_adamw_against_torch(params, grads_per_step, ours):
    torch_params = [torch.nn.Parameter(params[n].clone()) for n in NAMES]
    groups = [
        {"params": [p for n, p in zip(NAMES, torch_params) if decays(n)], "weight_decay": WD},
        {"params": [p for n, p in zip(NAMES, torch_params) if not decays(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LRS[0], betas=(BETA1, BETA2), eps=EPS, foreach=False)
    worst = 0.0
    for t, (lr, grads) in enumerate(zip(LRS, grads_per_step)):
        for group in opt.param_groups:
            group["lr"] = lr
        for n, p in zip(NAMES, torch_params):
            p.grad = grads[n].clone()
        torch.nn.utils.clip_grad_norm_(torch_params, MAX_NORM, foreach=False)
        opt.step()
        for n, p in zip(NAMES, torch_params):
            ref = p.detach()
            err = float((ours[t][n] - ref).abs().max()) / float(ref.abs().max())
            worst = max(worst, err)
            assert err <= 1e-6, f"adamw step {t + 1} {n}: relative error {err:.3g} vs torch.optim.AdamW"
    return worst


def check_float64(variant, params, grads_per_step, ours):
    """Independent float64 evaluation of the formulas in the docstring, with exact decimal scalars.

    Returns the largest relative error of the float32 parameters (per tensor, max |diff| / max |ref|)."""
    w = {n: params[n].double() for n in NAMES}
    m = {n: torch.zeros_like(w[n]) for n in NAMES}
    v = {n: torch.zeros_like(w[n]) for n in NAMES}
    b1, b2, worst = BETA1, BETA2, 0.0
    for t, (lr, grads) in enumerate(zip(LRS, grads_per_step), start=1):
        g64 = {n: grads[n].double() for n in NAMES}
        norm = math.sqrt(sum(float((g * g).sum()) for g in g64.values()))
        for n in NAMES:
            wd, p, g = weight_decay(n), w[n], g64[n]
            if variant == "adamw":
                g = g * min(1.0, MAX_NORM / (norm + 1e-6))
            else:
                g = g / max(norm / MAX_NORM, 1.0)
            if variant == "lans":
                g = g / (float(g.norm()) + EPS)
            m[n] = b1 * m[n] + (1 - b1) * g
            v[n] = b2 * v[n] + (1 - b2) * g * g
            mh, vh = m[n] / (1 - b1**t), v[n] / (1 - b2**t)
            if variant in ("lamb", "nvlamb"):
                u = mh / (vh.sqrt() + EPS) + wd * p
                r = float(p.norm() / u.norm()) if (variant == "nvlamb" or wd != 0.0) else 1.0
                w[n] = p - lr * r * u
            elif variant == "lans":
                d = vh.sqrt() + EPS
                r, c = mh / d + wd * p, g / d + wd * p
                w[n] = p - lr * float(p.norm()) * (b1 * r / float(r.norm()) + (1 - b1) * c / float(c.norm()))
            elif variant == "adamw":
                w[n] = p * (1 - lr * wd) - lr * mh / (vh.sqrt() + EPS)
            else:
                w[n] = p - lr * (m[n] / (v[n].sqrt() + EPS) + wd * p)
            err = float((ours[t - 1][n].double() - w[n]).abs().max()) / float(w[n].abs().max())
            worst = max(worst, err)
    return worst


def save_safetensors(path, tensors, meta):
    """safetensors writer with a byte-stable header (keys sorted; the library's metadata order is not stable)."""
    header = {"__metadata__": dict(sorted(meta.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        x = tensors[name].detach().contiguous()
        assert x.dtype == F32
        data = x.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(x.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for data in blobs:
            f.write(data)
    back = load_file(path)  # read back with the library
    assert set(back) == set(tensors) and all(torch.equal(back[k], tensors[k]) for k in tensors), path


def metadata(variant, source, clip_rule, bias_correction, trust_ratio, max_grad_norm="1.0"):
    return {
        "variant": variant,
        "source": source,
        "beta1": repr(BETA1),
        "beta2": repr(BETA2),
        "eps": repr(EPS),
        "weight_decay": repr(WD),
        "max_grad_norm": max_grad_norm,
        "clip_rule": clip_rule,
        "learning_rates": ",".join(repr(x) for x in LRS),
        "no_decay_rule": "weight_decay 0.0 if the name contains any of: " + ", ".join(NO_DECAY),
        "bias_correction": bias_correction,
        "trust_ratio": trust_ratio,
        "steps": str(len(LRS)),
        "param_names": ",".join(NAMES),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "Tests", "Fixtures", "optimizers"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    params, grads = make_problem()
    norms = [float(global_norm(g)) for g in grads]
    for t, nm in enumerate(norms, start=1):
        assert (nm > MAX_NORM) == (t % 2 == 1), (t, nm)

    variants = {
        "lamb": (
            run_lamb(params, grads, nvlamb=False),
            metadata("lamb", "apex/optimizers/fused_lamb.py + csrc/multi_tensor_lamb.cu (use_nvlamb=False)",
                     "g / (norm / max_grad_norm) if norm > max_grad_norm", "yes",
                     "tensors with weight_decay != 0"),
        ),
        "nvlamb": (
            run_lamb(params, grads, nvlamb=True),
            metadata("nvlamb", "apex/optimizers/fused_lamb.py + csrc/multi_tensor_lamb.cu (use_nvlamb=True)",
                     "g / (norm / max_grad_norm) if norm > max_grad_norm", "yes", "all tensors"),
        ),
        "lans": (
            run_lans(params, grads),
            metadata("lans", "HabanaAI/Model-References PyTorch/nlp/pretraining/deepspeed-bert/lans.py",
                     "g / max(norm / max_grad_norm, 1)", "yes",
                     "all tensors; two ratios (Adam step r, normalised-gradient step c) mixed by beta1, 1-beta1"),
        ),
        "adamw": (
            run_adamw(params, grads),
            metadata("adamw", "torch.optim.AdamW after torch.nn.utils.clip_grad_norm_",
                     "g * min(1, max_grad_norm / (norm + 1e-6))", "yes", "none"),
        ),
        "adamw_nobc": (
            run_adamw_nobc(params, grads),
            metadata("adamw_nobc", "google-research/bert optimization.py AdamWeightDecayOptimizer "
                     "after tf.clip_by_global_norm", "g * max_grad_norm / max(norm, max_grad_norm)", "no", "none"),
        ),
    }

    worst = check_adamw_against_torch(params, grads, variants["adamw"][0][0])
    print(f"adamw vs torch.optim.AdamW + clip_grad_norm_: max relative error {worst:.3g} (limit 1e-6)")
    for variant, ((steps, _, _), _) in variants.items():
        err = check_float64(variant, params, grads, steps)
        print(f"{variant}: float64 re-evaluation of the formulas, max relative parameter error {err:.3g}")
        assert err <= 1e-6, variant
    print("lamb/nvlamb: NVIDIA apex is not installable here (CUDA-only extensions, not on PyPI); not cross-checked")

    for variant, ((steps, m, v), meta) in variants.items():
        tensors = {}
        for n in NAMES:
            tensors[f"param.{n}"] = params[n].contiguous()
        for t in range(1, len(LRS) + 1):
            tensors[f"grad_norm.{t}"] = torch.tensor([norms[t - 1]], dtype=F32)
            for n in NAMES:
                tensors[f"grad.{t}.{n}"] = grads[t - 1][n].contiguous()
                tensors[f"expected.{t}.{n}"] = steps[t - 1][n].contiguous()
        for n in NAMES:
            tensors[f"m.5.{n}"] = m[n].contiguous()
            tensors[f"v.5.{n}"] = v[n].contiguous()
        for k, x in tensors.items():
            assert x.dtype == F32 and torch.isfinite(x).all(), k
        path = os.path.join(out_dir, f"{variant}.safetensors")
        save_safetensors(path, tensors, meta)
        moved = max(float((steps[-1][n] - params[n]).abs().max()) for n in NAMES)
        print(f"wrote {path} ({len(tensors)} tensors; largest parameter change after 5 steps {moved:.4g})")
    print("grad norms:", ", ".join(f"{x:.6g}" for x in norms))


if __name__ == "__main__":
    main()
