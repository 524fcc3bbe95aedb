#!/usr/bin/env python3
"""Reference top-k guesses of transformers' fill-mask pipeline on a small model pre-trained by `bert pretrain`.

Writes Tests/Fixtures/fill_mask/:
  model/     config.json, model.safetensors, vocab.txt — a tiny BERT (2 layers, hidden 64, 4 heads, vocabulary of
             1,000 WordPieces learnt by `bert vocab`) pre-trained by our own `bert pretrain` for 300 steps on one
             Wikipedia file of ../shared/datasets, so that its guesses are peaked rather than near-uniform
  texts.txt  sentences from another Wikipedia file (hidden from training), each with one to three [MASK]s
  expected.jsonl  one line per text: for each [MASK], transformers' pipeline("fill-mask", top_k=10) output as
             [{"score", "token", "token_str"}, …] (BertForMaskedLM.from_pretrained on model/, BertTokenizer on its
             vocab.txt, lower-cased); single-mask texts are wrapped in a list like multi-mask ones

Run from the repository root after `swift build -c release` (the venv as in Tests/Fixtures/core/README.md):
    .venv-ref/bin/python scripts/reference/fill_mask.py
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIKI = os.path.join(os.path.dirname(ROOT), "shared", "datasets", "wikipedia", "enwiki_wikiextractor_2015")
CONFIG = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
              hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
              max_position_embeddings=128, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12)


def sh(*cmd):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def train_model(bert, work, out):
    text = os.path.join(WIKI, "wiki_00")
    vocab = os.path.join(work, "vocab.txt")
    sh(bert, "vocab", "--input", text, "--vocab-size", "1000", "--output", vocab)
    sh(bert, "prepare", "--input", text, "--input-format", "wikiextractor", "--vocab-file", vocab, "--output-dir",
       os.path.join(work, "shards"), "--max-seq-length", "64", "--max-predictions-per-seq", "10", "--dupe-factor", "2")
    with open(vocab) as f:
        config = dict(CONFIG, vocab_size=sum(1 for _ in f))
    with open(os.path.join(work, "config.json"), "w") as f:
        json.dump(config, f)
    sh(bert, "pretrain", "--input-dir", os.path.join(work, "shards"), "--output-dir", os.path.join(work, "run"),
       "--config-file", os.path.join(work, "config.json"), "--max-seq-length", "64", "--max-predictions-per-seq", "10",
       "--train-batch-size", "32", "--learning-rate", "1e-2", "--warmup-proportion", "0.1", "--max-steps", "300",
       "--num-steps-per-checkpoint", "300", "--seed", "7")
    ckpt = os.path.join(work, "run", "ckpt_300")
    os.makedirs(out, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(ckpt, name), os.path.join(out, name))
    shutil.copy(vocab, os.path.join(out, "vocab.txt"))


def hidden_texts(count=12):
    """Sentences of wiki_29 (not trained on), with masks on words the vocabulary holds whole."""
    with open(os.path.join(WIKI, "wiki_29")) as f:
        body = re.sub(r"<[^>]+>", " ", f.read())
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if 40 < len(s.strip()) < 200]
    texts = []
    for i, s in enumerate(sentences[::37][:count]):
        words = s.split()
        for k in range(1 + i % 3):   # one, two or three masks
            j = (3 + 5 * k + i) % len(words)
            words[j] = "[MASK]"
        texts.append(" ".join(words))
    texts.append("[MASK] is the first word, and the last is [MASK]")
    return texts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bert", default=os.path.join(ROOT, ".build", "release", "bert"))
    p.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "fill_mask"))
    a = p.parse_args()

    import torch
    from transformers import BertForMaskedLM, BertTokenizer, pipeline

    torch.set_num_threads(1)
    model_dir = os.path.join(a.out, "model")
    with tempfile.TemporaryDirectory() as work:
        train_model(a.bert, work, model_dir)
    texts = hidden_texts()
    with open(os.path.join(a.out, "texts.txt"), "w") as f:
        f.write("\n".join(texts) + "\n")
    model = BertForMaskedLM.from_pretrained(model_dir).float().eval()
    tokenizer = BertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer, top_k=10, device="cpu")
    with open(os.path.join(a.out, "expected.jsonl"), "w") as f:
        for text in texts:
            out = fill(text)
            masks = out if isinstance(out[0], list) else [out]
            f.write(json.dumps([[{"score": c["score"], "token": c["token"], "token_str": c["token_str"]} for c in m]
                                for m in masks]) + "\n")
    print(f"wrote {a.out}: {len(texts)} texts")


if __name__ == "__main__":
    main()
