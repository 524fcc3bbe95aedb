"""The same lines through `bert tokenize` and Hugging Face `tokenizers` (BertWordPieceTokenizer with BERT's
settings): the shared step of tokenize_match.py, tokenize_fuzz.py and unicode_sweep.py."""
import json
import os
import subprocess
import tempfile

from tokenizers import BertWordPieceTokenizer

MODES = (("uncased", True), ("cased", False))


def both_ids(lines, vocab, bert, lowercase):
    """Returns (ours, hf, hf_tokenizer): the ids of every line with [CLS]/[SEP] from each side."""
    hf = BertWordPieceTokenizer(vocab, lowercase=lowercase, strip_accents=None, clean_text=True,
                                handle_chinese_chars=True)
    expected = [e.ids for e in hf.encode_batch(lines)]
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        path = f.name
    try:
        cmd = [bert, "tokenize", "--vocab", vocab, path] + ([] if lowercase else ["--cased"])
        ours = [json.loads(l) for l in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()]
    finally:
        os.unlink(path)
    if len(ours) != len(lines):
        raise SystemExit(f"bert tokenize gave {len(ours)} lines for {len(lines)}")
    return ours, expected, hf
