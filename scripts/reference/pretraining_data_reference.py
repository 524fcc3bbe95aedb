#!/usr/bin/env python3
"""Reference for `bert prepare`: a plain single-process port of Google's create_pretraining_data.py
(google-research/bert) with NVIDIA's change to the random-next-sentence draw, and of the tokenizer it uses
(tokenization.py: BasicTokenizer + WordPiece). Written from the algorithm's description for this project.

It serves three purposes:
  * `stats`   run the algorithm on a small pre-tokenized input with a fixed seed and write statistics that
              the Swift test compares against (Tests/Fixtures/shards/reference_stats.json);
  * `fixture` make that small pre-tokenized input from real text (Tests/Fixtures/shards/reference_input.txt
              and a vocabulary of the tokens it uses);
  * `run`     the whole pipeline on raw text (tokenize, instances, optional NVIDIA-layout HDF5 through h5py);
              bench/prepare_speed.py times it against `bert prepare`.

Input formats: Google's (one sentence per line, blank line between documents) and WikiExtractor's
(`<doc>` blocks; title line dropped; paragraphs split into sentences by the same rules as the Swift
SentenceSegmenter).

Usage:
  python3 scripts/reference/pretraining_data_reference.py fixture --text FILE --vocab VOCAB --out-dir DIR
  python3 scripts/reference/pretraining_data_reference.py stats --input DIR/reference_input.txt \
      --vocab DIR/reference_vocab.txt --out DIR/reference_stats.json
  python3 scripts/reference/pretraining_data_reference.py run --input FILES --vocab VOCAB [--output FILE.hdf5]
"""
import argparse
import collections
import json
import random
import re
import sys
import time
import unicodedata

# ---------------------------------------------------------------------------------------------- tokenizer


def load_vocab(path):
    vocab = collections.OrderedDict()
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            tok = line.rstrip("\n").strip()
            if tok not in vocab:
                vocab[tok] = i
    return vocab


def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch):
    cp = ord(ch)
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return ((0x4E00 <= cp <= 0x9FFF) or (0x3400 <= cp <= 0x4DBF) or (0x20000 <= cp <= 0x2A6DF)
            or (0x2A700 <= cp <= 0x2B73F) or (0x2B740 <= cp <= 0x2B81F) or (0x2B820 <= cp <= 0x2CEAF)
            or (0xF900 <= cp <= 0xFAFF) or (0x2F800 <= cp <= 0x2FA1F))


class BasicTokenizer:
    def __init__(self, lower=True):
        self.lower = lower

    def tokenize(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                out.append(" " + ch + " ")
            elif _is_whitespace(ch):
                out.append(" ")
            else:
                out.append(ch)
        tokens = []
        for tok in "".join(out).split():
            if self.lower:
                tok = tok.lower()
                tok = "".join(c for c in unicodedata.normalize("NFD", tok) if unicodedata.category(c) != "Mn")
            cur = []
            for ch in tok:
                if _is_punctuation(ch):
                    if cur:
                        tokens.append("".join(cur))
                        cur = []
                    tokens.append(ch)
                else:
                    cur.append(ch)
            if cur:
                tokens.append("".join(cur))
        return tokens


class WordpieceTokenizer:
    def __init__(self, vocab, unk="[UNK]", max_chars=100):
        self.vocab, self.unk, self.max_chars = vocab, unk, max_chars

    def tokenize(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = "##" + sub
                if sub in self.vocab:
                    cur = sub
                    break
                end -= 1
            if cur is None:
                return [self.unk]
            pieces.append(cur)
            start = end
        return pieces


class FullTokenizer:
    def __init__(self, vocab_file, lower=True):
        self.vocab = load_vocab(vocab_file)
        self.basic = BasicTokenizer(lower)
        self.wordpiece = WordpieceTokenizer(self.vocab)

    def tokenize(self, text):
        return [p for w in self.basic.tokenize(text) for p in self.wordpiece.tokenize(w)]


class PretokenizedTokenizer:
    """Input lines are already WordPiece tokens separated by spaces."""

    def __init__(self, vocab_file):
        self.vocab = load_vocab(vocab_file)

    def tokenize(self, text):
        return text.split()


# ---------------------------------------------------------------------------------------------- input

_ABBREV = set("""mr mrs ms dr prof sr jr st vs etc e.g i.e u.s u.k u.n jan feb mar apr jun jul aug sep sept oct
nov dec no nos vol vols fig figs inc ltd co corp mt ft gen col lt sgt capt cmdr adm gov sen rep rev hon pres approx
ca cf al ed eds est dept univ bros ave blvd rd pp op ch sec viz""".split())
_BOUNDARY = re.compile(r"[.?!]+[\"')\]\u201d\u2019]*(?=\s+[A-Z0-9\"'(\[\u201c\u2018])")


def split_sentences(text):
    """The same rules as Sources/BERT/Data/SentenceSegmenter.swift (ASCII capitals only)."""
    out, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group(0) == ".":
            word = text[start:m.start()].split()[-1:] or [""]
            word = word[0].lstrip("(\"'[").lower()
            if 0 < len(word) <= 8 and (
                    (len(word) == 1 and word.isalpha())
                    or ("." in word and all(0 < len(g) <= 2 and g.isalpha() and g.isascii() for g in word.split(".")))
                    or word in _ABBREV):
                continue
        s = text[start:m.end()].strip()
        if s:
            out.append(s)
        start = m.end()
    s = text[start:].strip()
    if s:
        out.append(s)
    return out


def read_documents(paths, tokenizer, fmt="google"):
    """Google's reader: documents as lists of token lists; WikiExtractor blocks when fmt == 'wikiextractor'."""
    all_documents = [[]]
    for path in paths:
        with open(path, encoding="utf-8") as f:
            after_doc = False
            for line in f:
                line = line.strip()
                if fmt == "wikiextractor":
                    if not line:
                        continue
                    if line.startswith("<doc ") or line == "<doc>":
                        all_documents.append([])
                        after_doc = True
                        continue
                    if line == "</doc>":
                        all_documents.append([])
                        continue
                    if after_doc:
                        after_doc = False
                        continue
                    for s in split_sentences(line):
                        toks = tokenizer.tokenize(s)
                        if toks:
                            all_documents[-1].append(toks)
                else:
                    if not line:
                        all_documents.append([])
                    toks = tokenizer.tokenize(line)
                    if toks:
                        all_documents[-1].append(toks)
    return [d for d in all_documents if d]


# ---------------------------------------------------------------------------------------------- algorithm

class Instance:
    __slots__ = ("tokens", "segment_ids", "positions", "labels", "is_random_next", "kinds")

    def __init__(self, tokens, segment_ids, positions, labels, is_random_next, kinds):
        self.tokens, self.segment_ids, self.positions = tokens, segment_ids, positions
        self.labels, self.is_random_next, self.kinds = labels, is_random_next, kinds


def create_training_instances(all_documents, vocab_words, rng, max_seq_length=128, dupe_factor=5,
                              short_seq_prob=0.1, masked_lm_prob=0.15, max_predictions_per_seq=20,
                              do_whole_word_mask=False, nvidia_fix=True):
    rng.shuffle(all_documents)
    instances = []
    for _ in range(dupe_factor):
        for document_index in range(len(all_documents)):
            instances.extend(create_instances_from_document(
                all_documents, document_index, max_seq_length, short_seq_prob, masked_lm_prob,
                max_predictions_per_seq, vocab_words, rng, do_whole_word_mask, nvidia_fix))
    rng.shuffle(instances)
    return instances


def create_instances_from_document(all_documents, document_index, max_seq_length, short_seq_prob,
                                   masked_lm_prob, max_predictions_per_seq, vocab_words, rng,
                                   do_whole_word_mask, nvidia_fix):
    document = all_documents[document_index]
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk, current_length = [], 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = []
                for j in range(a_end):
                    tokens_a.extend(current_chunk[j])
                tokens_b = []
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    if nvidia_fix and random_document_index == document_index:
                        is_random_next = False
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    i -= len(current_chunk) - a_end
                else:
                    is_random_next = False
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                assert len(tokens_a) >= 1 and len(tokens_b) >= 1
                tokens = ["[CLS]"] + tokens_a + ["[SEP]"] + tokens_b + ["[SEP]"]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                tokens, positions, labels, kinds = create_masked_lm_predictions(
                    tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng, do_whole_word_mask)
                instances.append(Instance(tokens, segment_ids, positions, labels, is_random_next, kinds))
            current_chunk, current_length = [], 0
        i += 1
    return instances


def truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng):
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        assert len(trunc) >= 1
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


def create_masked_lm_predictions(tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng,
                                 do_whole_word_mask):
    cand_indexes = []
    for i, token in enumerate(tokens):
        if token == "[CLS]" or token == "[SEP]":
            continue
        if do_whole_word_mask and cand_indexes and token.startswith("##"):
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    rng.shuffle(cand_indexes)
    output = list(tokens)
    num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))
    masked, covered, kinds = [], set(), collections.Counter()
    for index_set in cand_indexes:
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(index_set) > num_to_predict:
            continue
        if any(i in covered for i in index_set):
            continue
        for index in index_set:
            covered.add(index)
            if rng.random() < 0.8:
                output[index] = "[MASK]"
                kinds["mask"] += 1
            elif rng.random() < 0.5:
                kinds["keep"] += 1
            else:
                output[index] = vocab_words[rng.randint(0, len(vocab_words) - 1)]
                kinds["random"] += 1
            masked.append((index, tokens[index]))
    masked.sort()
    return output, [m[0] for m in masked], [m[1] for m in masked], kinds


# ---------------------------------------------------------------------------------------------- outputs

def statistics(instances, max_seq_length):
    n = len(instances)
    tokens = sum(len(x.tokens) for x in instances)
    masked = sum(len(x.positions) for x in instances)
    kinds = collections.Counter()
    for x in instances:
        kinds.update(x.kinds)
    return {
        "instances": n,
        "mean_tokens": tokens / n,
        "short_fraction": sum(len(x.tokens) < max_seq_length for x in instances) / n,
        "mean_masked": masked / n,
        "masked_fraction": masked / tokens,
        "mask_fraction": kinds["mask"] / masked,
        "keep_fraction": kinds["keep"] / masked,
        "random_fraction": kinds["random"] / masked,
        "nsp_random_fraction": sum(x.is_random_next for x in instances) / n,
        "mean_segment_a": sum(x.segment_ids.count(0) for x in instances) / n,
    }


def write_hdf5(instances, vocab, path, max_seq_length, max_predictions):
    import h5py
    import numpy as np
    n = len(instances)
    ids = np.zeros([n, max_seq_length], dtype="int32")
    mask = np.zeros([n, max_seq_length], dtype="int32")
    seg = np.zeros([n, max_seq_length], dtype="int32")
    pos = np.zeros([n, max_predictions], dtype="int32")
    mid = np.zeros([n, max_predictions], dtype="int32")
    nsp = np.zeros(n, dtype="int32")
    for r, x in enumerate(instances):
        t = [vocab[w] for w in x.tokens]
        ids[r, :len(t)] = t
        mask[r, :len(t)] = 1
        seg[r, :len(t)] = x.segment_ids
        pos[r, :len(x.positions)] = x.positions
        mid[r, :len(x.labels)] = [vocab[w] for w in x.labels]
        nsp[r] = 1 if x.is_random_next else 0
    with h5py.File(path, "w") as f:
        f.create_dataset("input_ids", data=ids, dtype="i4", compression="gzip")
        f.create_dataset("input_mask", data=mask, dtype="i1", compression="gzip")
        f.create_dataset("segment_ids", data=seg, dtype="i1", compression="gzip")
        f.create_dataset("masked_lm_positions", data=pos, dtype="i4", compression="gzip")
        f.create_dataset("masked_lm_ids", data=mid, dtype="i4", compression="gzip")
        f.create_dataset("next_sentence_labels", data=nsp, dtype="i1", compression="gzip")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("stats", "run"):
        p = sub.add_parser(name)
        p.add_argument("--input", nargs="+", required=True)
        p.add_argument("--vocab", required=True)
        p.add_argument("--format", default="google", choices=["google", "wikiextractor"])
        p.add_argument("--max-seq-length", type=int, default=128)
        p.add_argument("--max-predictions-per-seq", type=int, default=20)
        p.add_argument("--masked-lm-prob", type=float, default=0.15)
        p.add_argument("--dupe-factor", type=int, default=5)
        p.add_argument("--short-seq-prob", type=float, default=0.1)
        p.add_argument("--random-seed", type=int, default=12345)
        p.add_argument("--do-whole-word-mask", action="store_true")
        p.add_argument("--cased", action="store_true")
        p.add_argument("--out", help="statistics JSON")
        p.add_argument("--seeds", type=int, default=1, help="repeat with seeds seed..seed+N-1 and report mean and std")
        p.add_argument("--output", help="NVIDIA-layout HDF5 file (needs h5py)")
    fx = sub.add_parser("fixture")
    fx.add_argument("--text", required=True, help="WikiExtractor file")
    fx.add_argument("--vocab", required=True)
    fx.add_argument("--out-dir", required=True)
    fx.add_argument("--max-bytes", type=int, default=60000)
    fx.add_argument("--sentences-per-doc", type=int, default=8, help="keep the first N sentences of each article")
    args = ap.parse_args()

    if args.cmd == "fixture":
        tok = FullTokenizer(args.vocab)
        docs = read_documents([args.text], tok, "wikiextractor")
        lines, used, size = [], set(), 0
        for d in docs:
            for s in d[:args.sentences_per_doc]:
                line = " ".join(s)
                lines.append(line)
                used.update(s)
                size += len(line) + 1
            lines.append("")
            if size >= args.max_bytes:
                break
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        words = specials + sorted(used - set(specials))
        with open(f"{args.out_dir}/reference_input.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(lines).rstrip("\n") + "\n")
        with open(f"{args.out_dir}/reference_vocab.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(words) + "\n")
        print(f"fixture: {sum(1 for l in lines if not l)} documents, {len(lines)} lines, {len(words)} vocab words")
        return

    t0 = time.time()
    tok = PretokenizedTokenizer(args.vocab) if args.cmd == "stats" else FullTokenizer(args.vocab, not args.cased)
    docs = read_documents(args.input, tok, args.format)
    vocab_words = list(tok.vocab.keys())
    runs = []
    for k in range(args.seeds):
        rng = random.Random(args.random_seed + k)
        instances = create_training_instances(
            list(docs), vocab_words, rng, args.max_seq_length, args.dupe_factor, args.short_seq_prob,
            args.masked_lm_prob, args.max_predictions_per_seq, args.do_whole_word_mask)
        runs.append(statistics(instances, args.max_seq_length))
        if k == 0 and args.output:
            write_hdf5(instances, tok.vocab, args.output, args.max_seq_length, args.max_predictions_per_seq)
    stats = dict(runs[0])
    if args.seeds > 1:
        # Spread over seeds: the Swift test (another generator) allows a few standard deviations.
        stats["std"] = {key: (sum((r[key] - sum(q[key] for q in runs) / len(runs)) ** 2 for r in runs)
                              / (len(runs) - 1)) ** 0.5 for key in runs[0]}
        stats["mean"] = {key: sum(r[key] for r in runs) / len(runs) for key in runs[0]}
    stats.update({"seed": args.random_seed, "seeds": args.seeds, "max_seq_length": args.max_seq_length,
                  "dupe_factor": args.dupe_factor, "max_predictions_per_seq": args.max_predictions_per_seq,
                  "masked_lm_prob": args.masked_lm_prob, "short_seq_prob": args.short_seq_prob,
                  "do_whole_word_mask": args.do_whole_word_mask, "documents": len(docs)})
    stats["seconds"] = time.time() - t0
    text = json.dumps(stats, indent=2, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    sys.exit(main())
