#!/usr/bin/env bash
# `make demo`: the whole pre-training pipeline on a real English corpus that installs from Debian — the Python 3.11
# documentation's reST sources (python3.11-doc, ≈ 5.8 MB of prose once the markup is stripped).
#   text → bert vocab → bert prepare → bert pretrain (bert-mini, LAMB, MLM accuracy on held-out shards) → bert plot
# Everything goes to out/demo/ (made afresh each time). About 5 minutes on 2 cores, most of it training.
set -euo pipefail
cd "$(dirname "$0")/.."
BERT=${BERT:-.build/release/bert}
OUT=${OUT:-out/demo}
DOCS=/usr/share/doc/python3.11/html/_sources
STEPS=${DEMO_STEPS:-150}

[ -d "$DOCS" ] || { echo "demo: $DOCS is missing (the Makefile installs python3.11-doc)"; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
find "$DOCS" -name '*.rst.txt' | LC_ALL=C sort | xargs awk -f scripts/rst-to-text.awk > "$OUT/corpus.txt"
documents=$(wc -l < "$OUT/corpus.txt")
head -n $((documents - 5)) "$OUT/corpus.txt" > "$OUT/train.txt"     # one document per line
tail -n 5 "$OUT/corpus.txt" > "$OUT/heldout.txt"                     # held out for evaluation
echo "demo: corpus of $documents documents ($(du -h "$OUT/corpus.txt" | cut -f1)) from $DOCS"

echo "== bert vocab"
"$BERT" vocab --input "$OUT/train.txt" --vocab-size 8192 --output "$OUT/vocab.txt"
echo "== bert prepare"
"$BERT" prepare --input "$OUT/train.txt" --input-format nvidia --vocab-file "$OUT/vocab.txt" --output-dir "$OUT/shards" \
    --max-seq-length 128 --max-predictions-per-seq 20 --dupe-factor 2 --num-shards 4
"$BERT" prepare --input "$OUT/heldout.txt" --input-format nvidia --vocab-file "$OUT/vocab.txt" --output-dir "$OUT/heldout" \
    --max-seq-length 128 --max-predictions-per-seq 20 --dupe-factor 1 --num-shards 1 --output-prefix heldout
echo "== bert pretrain (bert-mini, LAMB, global batch 64, $STEPS steps)"
"$BERT" pretrain --input-dir "$OUT/shards" --output-dir "$OUT/run" --model bert-mini --vocab-file "$OUT/vocab.txt" \
    --max-seq-length 128 --max-predictions-per-seq 20 --train-batch-size 64 --optimizer lamb --learning-rate 2e-2 \
    --warmup-proportion 0.1 --max-steps "$STEPS" --num-steps-per-checkpoint 50 --eval-dir "$OUT/heldout" --eval-every 25 \
    --json-summary "$OUT/metrics.jsonl" --log-freq 5
echo "== bert plot"
"$BERT" plot "$OUT/metrics.jsonl" -o "$OUT/curve.svg" --title "bert-mini on the Python docs"
echo "== held-out MLM accuracy by step (step 0: before training)"
grep '"type":"eval"' "$OUT/metrics.jsonl" | sed -E 's/.*"eval_mlm_accuracy":([0-9.]+).*"step":([0-9]+).*/  step \2: \1/'
echo "demo: checkpoint $(ls -d "$OUT"/run/ckpt_* | sort -V | tail -1), loss curve $OUT/curve.svg, metrics $OUT/metrics.jsonl"
