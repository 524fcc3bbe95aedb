#!/usr/bin/env python3
"""Tiny BERT checkpoints written by TensorFlow itself and by torch.save, for `bert convert`'s tests, and the check
that TensorFlow and transformers load what `bert convert` writes.

The tensors (BertForPreTraining, hidden 16, 2 layers, 2 heads, intermediate 32, vocabulary 99 — not a multiple of 8,
so NVIDIA's padding shows —, 32 positions) are seeded normal draws under Hugging Face's names and PyTorch's shapes,
kept in expected.safetensors. From them:

  tf/        bert_model.ckpt.index + .data-00000-of-00001 written by tf.raw_ops.SaveV2 under Google's variable names
             (modeling.py / run_pretraining.py: kernels [in, out], LayerNorm gamma/beta, cls/predictions/output_bias,
             cls/seq_relationship/output_weights [2, H]) with Adam slots (adam_m, adam_v) and global_step, as Google's
             checkpoints hold them; bert_config.json
  hf/        pytorch_model.bin = torch.save(BertForPreTraining(config).state_dict()) after loading the tensors
             (transformers' own names, the tied decoder included); config.json
  nvidia/    ckpt_8.pt in the layout of NVIDIA DeepLearningExamples' run_pretraining.py: {'model': state dict with
             `dense_act` names, the vocabulary padded to 104 rows and one transposed (non-contiguous) view, 'optimizer': an optimizer state dict,
             'master params': a list of nn.Parameter, 'files', 'epoch'}; bert_config.json (vocab 99)
  evil.pt    a torch.save file whose pickle calls os.system (to be refused, never run)

Run from the repository root (offline), in two environments:
    /work/venv-ref/bin/python scripts/reference/make_checkpoint_fixtures.py torch      # torch, transformers, safetensors
    /work/venv-tf/bin/python  scripts/reference/make_checkpoint_fixtures.py tf         # tensorflow-cpu, safetensors
and, on a directory `bert convert --to tf` / `--to pytorch` wrote:
    /work/venv-tf/bin/python  scripts/reference/make_checkpoint_fixtures.py check-tf DIR
    /work/venv-ref/bin/python scripts/reference/make_checkpoint_fixtures.py check-torch DIR
"""

import json
import os
import sys

import numpy as np

OUT = "Tests/Fixtures/checkpoints"
CONFIG = {
    "vocab_size": 99, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 32, "type_vocab_size": 2, "initializer_range": 0.02,
}


def reference_tensors():
    """HF name -> float32 array (PyTorch layout), in BertForPreTraining's order."""
    c = CONFIG
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    shapes = [("bert.embeddings.word_embeddings.weight", [V, H]),
              ("bert.embeddings.position_embeddings.weight", [c["max_position_embeddings"], H]),
              ("bert.embeddings.token_type_embeddings.weight", [c["type_vocab_size"], H]),
              ("bert.embeddings.LayerNorm.weight", [H]), ("bert.embeddings.LayerNorm.bias", [H])]
    for l in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{l}."
        for proj in ["query", "key", "value"]:
            shapes += [(p + f"attention.self.{proj}.weight", [H, H]), (p + f"attention.self.{proj}.bias", [H])]
        shapes += [(p + "attention.output.dense.weight", [H, H]), (p + "attention.output.dense.bias", [H]),
                   (p + "attention.output.LayerNorm.weight", [H]), (p + "attention.output.LayerNorm.bias", [H]),
                   (p + "intermediate.dense.weight", [I, H]), (p + "intermediate.dense.bias", [I]),
                   (p + "output.dense.weight", [H, I]), (p + "output.dense.bias", [H]),
                   (p + "output.LayerNorm.weight", [H]), (p + "output.LayerNorm.bias", [H])]
    shapes += [("bert.pooler.dense.weight", [H, H]), ("bert.pooler.dense.bias", [H]),
               ("cls.predictions.transform.dense.weight", [H, H]), ("cls.predictions.transform.dense.bias", [H]),
               ("cls.predictions.transform.LayerNorm.weight", [H]), ("cls.predictions.transform.LayerNorm.bias", [H]),
               ("cls.predictions.bias", [V]), ("cls.seq_relationship.weight", [2, H]), ("cls.seq_relationship.bias", [2])]
    rng = np.random.RandomState(20240611)
    return {name: (rng.standard_normal(shape) * 0.5).astype(np.float32) for name, shape in shapes}


def google_name(hf):
    """Google's variable name for an HF name, and whether Google stores it transposed ([in, out])."""
    special = {"cls.predictions.bias": "cls/predictions/output_bias",
               "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
               "cls.seq_relationship.bias": "cls/seq_relationship/output_bias"}
    if hf in special:
        return special[hf], False
    parts = hf.split(".")
    if "layer" in parts:
        i = parts.index("layer")
        parts[i:i + 2] = ["layer_" + parts[i + 1]]
    leaf, owner = parts.pop(), parts[-1]
    path = "/".join(parts)
    if owner == "LayerNorm":
        return path + ("/gamma" if leaf == "weight" else "/beta"), False
    if owner.endswith("_embeddings"):
        return path, False
    return path + ("/kernel" if leaf == "weight" else "/bias"), leaf == "weight"


def google_tensors(tensors):
    out = {}
    for hf, value in tensors.items():
        name, transposed = google_name(hf)
        out[name] = value.T.copy() if transposed else value
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def make_tf():
    import tensorflow as tf
    os.makedirs(f"{OUT}/tf", exist_ok=True)
    tensors = google_tensors(reference_tensors())
    rng = np.random.RandomState(7)
    names, values = [], []
    for name, value in sorted(tensors.items()):
        names += [name, name + "/adam_m", name + "/adam_v"]
        values += [value, (rng.standard_normal(value.shape) * 1e-3).astype(np.float32),
                   np.abs(rng.standard_normal(value.shape) * 1e-6).astype(np.float32)]
    names.append("global_step")
    values.append(np.array(8, dtype=np.int64))
    tf.raw_ops.SaveV2(prefix=f"{OUT}/tf/bert_model.ckpt", tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in values])
    write_json(f"{OUT}/tf/bert_config.json", CONFIG)
    print("wrote", f"{OUT}/tf", len(names), "variables")


def make_torch():
    import collections
    import torch
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertForPreTraining
    tensors = reference_tensors()
    save_file(tensors, f"{OUT}/expected.safetensors")

    os.makedirs(f"{OUT}/hf", exist_ok=True)
    model = BertForPreTraining(BertConfig(**CONFIG))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    assert not unexpected and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}, (missing, unexpected)
    torch.save(model.state_dict(), f"{OUT}/hf/pytorch_model.bin")
    write_json(f"{OUT}/hf/config.json", dict(CONFIG, architectures=["BertForPreTraining"], model_type="bert"))

    os.makedirs(f"{OUT}/nvidia", exist_ok=True)
    V, padded = CONFIG["vocab_size"], (CONFIG["vocab_size"] + 7) // 8 * 8
    state = collections.OrderedDict()
    for name, value in tensors.items():
        t = torch.from_numpy(value)
        if name in ("bert.embeddings.word_embeddings.weight", "cls.predictions.bias"):
            t = torch.cat([t, torch.zeros((padded - V,) + tuple(t.shape[1:]))])
        state[name.replace("intermediate.dense.", "intermediate.dense_act.")
                  .replace("transform.dense.", "transform.dense_act.")] = t
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    # A view with strides (1, 2) over its storage: readers must follow the strides, not copy the bytes.
    state["cls.seq_relationship.weight"] = torch.from_numpy(tensors["cls.seq_relationship.weight"].T.copy()).t()
    assert not state["cls.seq_relationship.weight"].is_contiguous()
    params = list(state.values())[:2]
    checkpoint = {
        "model": state,
        "optimizer": {"state": {0: {"step": 8, "exp_avg": torch.zeros_like(params[0]), "exp_avg_sq": torch.ones_like(params[0])}},
                      "param_groups": [{"lr": 6e-3, "betas": (0.9, 0.999), "weight_decay": 0.01, "params": [0, 1]}]},
        "master params": [torch.nn.Parameter(p.clone()) for p in params],
        "files": [0, "wiki_0.hdf5"],
        "epoch": 1,
    }
    torch.save(checkpoint, f"{OUT}/nvidia/ckpt_8.pt")
    write_json(f"{OUT}/nvidia/bert_config.json", CONFIG)

    class Evil:
        def __reduce__(self):
            return os.system, ("touch /tmp/bert-evil-pickle-ran",)
    torch.save({"bert.embeddings.word_embeddings.weight": Evil()}, f"{OUT}/evil.pt")
    print("wrote", OUT)


def close(name, got, want):
    if got.shape != want.shape or not np.array_equal(got, want):
        sys.exit(f"MISMATCH {name}: {got.shape} vs {want.shape}")


def expected():
    from safetensors.numpy import load_file
    return load_file(f"{OUT}/expected.safetensors")


def check_tf(directory):
    import tensorflow as tf
    reader = tf.train.load_checkpoint(f"{directory}/bert_model.ckpt")
    shapes = reader.get_variable_to_shape_map()
    want = google_tensors(expected())
    assert set(shapes) == set(want), sorted(set(shapes) ^ set(want))
    for name, value in want.items():
        close(name, reader.get_tensor(name), value)
    config = json.load(open(f"{directory}/bert_config.json"))
    # Our config writer stores the probabilities as float32 values (0.10000000149011612).
    assert all(np.isclose(config[k], v, rtol=1e-6) if isinstance(v, float) else config[k] == v for k, v in CONFIG.items()), config
    print(f"tf.train.load_checkpoint: {len(want)} variables, all bit-identical to expected.safetensors")


def check_torch(directory):
    import torch
    from transformers import BertForPreTraining
    state = torch.load(f"{directory}/pytorch_model.bin", weights_only=True)
    want = expected()
    assert set(state) == set(want), sorted(set(state) ^ set(want))
    for name, value in want.items():
        close(name, state[name].numpy(), value)
    model, info = BertForPreTraining.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    loaded = model.state_dict()
    for name, value in want.items():
        close(name, loaded[name].numpy(), value)
    close("tied decoder", loaded["cls.predictions.decoder.weight"].numpy(), want["bert.embeddings.word_embeddings.weight"])
    print(f"torch.load(weights_only=True) and BertForPreTraining.from_pretrained: {len(want)} tensors, all bit-identical")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "tf":
        make_tf()
    elif mode == "torch":
        make_torch()
    elif mode == "check-tf":
        check_tf(sys.argv[2])
    elif mode == "check-torch":
        check_torch(sys.argv[2])
    else:
        sys.exit(__doc__)
