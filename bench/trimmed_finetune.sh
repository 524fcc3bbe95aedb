#!/bin/sh
# Wall time of `bert finetune mrpc` with trimmed training batches (the default) against --no-trim-batches, alternated,
# and whether the checkpoints and dev predictions are byte-identical (cmp).
# Usage: bench/trimmed_finetune.sh [BERT_BINARY] [MRPC_DIR] [TRAIN_PAIRS] [ROUNDS]
set -eu
BERT=${1:-.build/debug/bert}
MRPC=${2:-../shared/datasets/mrpc/glue_MRPC}
PAIRS=${3:-960}
ROUNDS=${4:-3}
VOCAB=Tests/Fixtures/tokenizer/bert-base-uncased-vocab.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/data"
head -n $((PAIRS + 1)) "$MRPC/train.tsv" > "$WORK/data/train.tsv"
cp "$MRPC/dev.tsv" "$WORK/data/dev.tsv"
for round in $(seq "$ROUNDS"); do
    for mode in trim-batches no-trim-batches; do
        out="$WORK/$mode-$round"
        start=$(date +%s.%N)
        "$BERT" finetune mrpc --model bert-mini --vocab-file "$VOCAB" --data-dir "$WORK/data" --output-dir "$out" \
            --num-train-epochs 1 --threads 2 "--$mode" > "$out.log" 2>&1
        end=$(date +%s.%N)
        "$BERT" predict mrpc --checkpoint "$out" --predict-file "$WORK/data/dev.tsv" --set dev \
            --output "$out.predictions.tsv" > /dev/null
        echo "round $round $mode: $(echo "$end - $start" | bc) s, $(tail -1 "$out.log" | grep -o '"training_sequences_per_second":[0-9.]*')"
    done
    cmp "$WORK/trim-batches-$round/model.safetensors" "$WORK/no-trim-batches-$round/model.safetensors" && echo "round $round: checkpoints identical"
    cmp "$WORK/trim-batches-$round.predictions.tsv" "$WORK/no-trim-batches-$round.predictions.tsv" && echo "round $round: predictions identical"
done
