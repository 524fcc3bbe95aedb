#!/usr/bin/env bash
# `make demo`: the whole pre-training pipeline on a real English corpus that installs from Debian — the Python 3.11
# documentation's reST sources (python3.11-doc, ≈ 5.8 MB of prose once the markup is stripped).
#   text → bert vocab → bert prepare → bert pretrain (BERT-tiny, LAMB, MLM accuracy on held-out documents)
#        → bert plot → bert fill-mask on held-out sentences
# Everything goes to out/demo/ (made afresh each time). 6 to 10 minutes on 2 cores, most of it training.
set -euo pipefail
cd "$(dirname "$0")/.."
BERT=${BERT:-.build/release/bert}
OUT=${OUT:-out/demo}
DOCS=/usr/share/doc/python3.11/html/_sources
MODEL=${DEMO_MODEL:-bert-tiny}
STEPS=${DEMO_STEPS:-3000}
LR=${DEMO_LR:-1e-2}
# Sequences of 64 tokens: twice the steps of 128 for the same work, which is what a model this small learns from most.
SEQ=64
PREDICTIONS=10

[ -d "$DOCS" ] || { echo "demo: $DOCS is missing (the Makefile installs python3.11-doc)"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
find "$DOCS" -name '*.rst.txt' | LC_ALL=C sort | xargs awk -f scripts/rst-to-text.awk > "$OUT/corpus.txt"
# One document per line; every 40th is held out for evaluation (spread over the whole manual, not its last chapter).
awk 'NR % 40 != 0' "$OUT/corpus.txt" > "$OUT/train.txt"
awk 'NR % 40 == 0' "$OUT/corpus.txt" > "$OUT/heldout.txt"
echo "demo: corpus of $(wc -l < "$OUT/corpus.txt") documents ($(du -h "$OUT/corpus.txt" | cut -f1)) from $DOCS;" \
     "$(wc -l < "$OUT/heldout.txt") held out"

echo "== bert vocab"
"$BERT" vocab --input "$OUT/train.txt" --vocab-size 8192 --output "$OUT/vocab.txt"
echo "== bert prepare"
"$BERT" prepare --input "$OUT/train.txt" --input-format nvidia --vocab-file "$OUT/vocab.txt" --output-dir "$OUT/shards" \
    --max-seq-length $SEQ --max-predictions-per-seq $PREDICTIONS --dupe-factor 5 --num-shards 4
# The held-out documents masked five ways: ≈ 16,000 masked tokens, so the accuracy moves by what the model learnt
# rather than by which few tokens happen to be masked.
"$BERT" prepare --input "$OUT/heldout.txt" --input-format nvidia --vocab-file "$OUT/vocab.txt" --output-dir "$OUT/heldout" \
    --max-seq-length $SEQ --max-predictions-per-seq $PREDICTIONS --dupe-factor 5 --num-shards 1 --output-prefix heldout
echo "== bert pretrain ($MODEL, seq $SEQ, LAMB at $LR, global batch 32, $STEPS steps)"
"$BERT" pretrain --input-dir "$OUT/shards" --output-dir "$OUT/run" --model "$MODEL" --vocab-file "$OUT/vocab.txt" \
    --max-seq-length $SEQ --max-predictions-per-seq $PREDICTIONS --train-batch-size 32 --optimizer lamb --learning-rate "$LR" \
    --warmup-proportion 0.05 --max-steps "$STEPS" --num-steps-per-checkpoint 1000 --eval-dir "$OUT/heldout" \
    --eval-every $((STEPS / 10)) --json-summary "$OUT/metrics.jsonl" --log-freq 100
cp "$OUT/vocab.txt" "$OUT/run/ckpt_$STEPS/"
echo "== bert plot"
"$BERT" plot "$OUT/metrics.jsonl" -o "$OUT/curve.svg" --title "$MODEL on the Python docs"
echo "== held-out MLM accuracy by step (step 0: before training)"
grep '"type":"eval"' "$OUT/metrics.jsonl" | sed -E 's/.*"eval_mlm_accuracy":([0-9.e-]+).*"eval_mlm_baseline_accuracy":([0-9.e-]+).*"step":([0-9]+).*/  step \3: \1   (always guessing the most frequent token: \2)/'
echo "== bert fill-mask on held-out sentences"
# Four sentences of 8 to 16 words from the held-out documents, one word of four letters or more masked in each.
tr -s ' ' '\n' < "$OUT/heldout.txt" | awk '
    { sentence = sentence (sentence == "" ? "" : " ") $0; words++ }
    /[.]$/ { if (words >= 8 && words <= 16 && sentence !~ /[^A-Za-z ,.]/) print sentence; sentence = ""; words = 0 }' |
  awk 'NR % 25 == 1' | head -n 4 |
  awk '{ for (i = 3; i <= NF; i++) if ($i ~ /^[a-z][a-z][a-z][a-z]+$/) { $i = "[MASK]"; break } print }' > "$OUT/fill-mask.txt"
"$BERT" fill-mask --checkpoint "$OUT/run/ckpt_$STEPS" --input "$OUT/fill-mask.txt" --top-k 5
echo "demo: checkpoint $OUT/run/ckpt_$STEPS, loss curve $OUT/curve.svg, metrics $OUT/metrics.jsonl"
