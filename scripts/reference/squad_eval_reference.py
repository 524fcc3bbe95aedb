#!/usr/bin/env python3
"""Writes Tests/Fixtures/squad/eval_{dataset,predictions,cases}.json: SQuAD v1.1 EM/F1 by the official rules.

The four functions below follow the official `evaluate-v1.1.py` (Rajpurkar et al.) line for line:
normalize = lower-case, drop ASCII punctuation (`string.punctuation`), replace the whole words a/an/the
(Python's Unicode `\\b`) by a space, collapse whitespace (`str.split()`); EM and token F1 are maxed over the
gold answers; a question without a prediction scores 0; totals are 100 × sum / questions.

The dataset and predictions are hand-made tricky cases: articles, punctuation (ASCII and not), Unicode
case mapping (final sigma, dotted I, accents), combining marks next to articles, odd whitespace, empty
predictions and golds that normalise to nothing, repeated tokens, several golds, a missing prediction and a
prediction for a question that is not in the dataset.

    .venv-ref/bin/python scripts/reference/squad_eval_reference.py
"""
import json
import os
import re
import string
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "squad")


def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def evaluate(dataset, predictions):
    """The official `evaluate`, also returning the per-question scores."""
    f1 = exact_match = total = 0
    per_question = []
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    print("Unanswered question " + qa["id"] + " will receive score 0.", file=sys.stderr)
                    per_question.append({"id": qa["id"], "answered": False, "exact_match": 0.0, "f1": 0.0})
                    continue
                ground_truths = [a["text"] for a in qa["answers"]]
                prediction = predictions[qa["id"]]
                em = metric_max_over_ground_truths(exact_match_score, prediction, ground_truths)
                f = metric_max_over_ground_truths(f1_score, prediction, ground_truths)
                exact_match += em
                f1 += f
                per_question.append({"id": qa["id"], "answered": True, "exact_match": float(em), "f1": float(f),
                                     "normalized_prediction": normalize_answer(prediction),
                                     "normalized_answers": [normalize_answer(g) for g in ground_truths]})
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}, per_question


# (question id, gold answers, prediction or None when the question goes unanswered)
CASES = [
    ("q-exact", ["Denver Broncos"], "Denver Broncos"),
    ("q-article", ["Denver Broncos"], "the Denver Broncos"),
    ("q-article-inside-words", ["theatre anthem"], "the theatre, an anthem"),
    ("q-case", ["THE CAROLINA PANTHERS"], "carolina panthers"),
    ("q-punct", ["Santa Clara, California"], "Santa Clara California."),
    ("q-number-comma", ["1,000"], "1000"),
    ("q-hyphen-ascii", ["24-10"], "2410"),
    ("q-en-dash", ["24–10"], "24-10"),
    ("q-quotes", ["\"golden anniversary\""], "“golden anniversary”"),
    ("q-apostrophe", ["Levi's Stadium"], "Levis Stadium"),
    ("q-right-quote-article", ["’s"], "the’s"),
    ("q-underscore", ["the_end"], "end"),
    ("q-partial", ["February 7, 2016"], "7 February"),
    ("q-repeats", ["cat cat dog"], "the the cat cat cat"),
    ("q-multiple-golds", ["Super Bowl L", "L", "Super Bowl"], "Bowl L"),
    ("q-multiple-golds-em", ["Carolina", "the Carolina Panthers", "Panthers"], "Carolina Panthers"),
    ("q-accent", ["Café Ångström"], "café ångström"),
    ("q-accent-stripped", ["naïve"], "naive"),
    ("q-decomposed", ["cafe\u0301"], "café"),
    ("q-combining-after-article", ["x"], "the\u0301 x"),
    ("q-final-sigma", ["οδος"], "ΟΔΟΣ"),
    ("q-sigma-inside", ["σα"], "ΣΑ"),
    ("q-dotted-i", ["i̇stanbul"], "İstanbul"),
    ("q-german", ["STRASSE"], "straße"),
    ("q-cjk", ["北京大学"], "北京 大学"),
    ("q-whitespace", ["new york city"], " new\u00a0york\tcity\u3000"),
    ("q-info-separator", ["a b"], "a\u001cb"),
    ("q-zero-width", ["ab"], "a\u200bb"),
    ("q-empty-prediction", ["Denver"], ""),
    ("q-gold-only-article", ["The"], "an"),
    ("q-gold-only-article-f1", ["The"], "the answer"),
    ("q-only-punct", ["!!!"], "?"),
    ("q-digits-articles", ["a1 3the"], "a1 3the"),
    ("q-no-overlap", ["Broncos"], "Panthers"),
    ("q-missing", ["Denver Broncos"], None),
    ("q-long", ["the quick brown fox jumps over the lazy dog"], "quick brown dog jumped over a fox"),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    qas = []
    for i, (qid, golds, _) in enumerate(CASES):
        qas.append({"answers": [{"answer_start": 0, "text": g} for g in golds], "question": "case %d?" % i,
                    "id": qid})
    context = "A context paragraph for the evaluation cases."
    dataset = {"data": [{"title": "Eval_cases", "paragraphs": [{"context": context, "qas": qas[:20]},
                                                                 {"context": context, "qas": qas[20:]}]}],
               "version": "1.1"}
    predictions = {qid: p for (qid, _, p) in CASES if p is not None}
    predictions["q-not-in-dataset"] = "anything"
    totals, per_question = evaluate(dataset["data"], predictions)
    normalize_cases = [{"text": t, "normalized": normalize_answer(t)} for t in
                       [p for (_, _, p) in CASES if p is not None] + [g for (_, gs, _) in CASES for g in gs]]
    with open(os.path.join(OUT, "eval_dataset.json"), "w") as f:
        json.dump(dataset, f)
    with open(os.path.join(OUT, "eval_predictions.json"), "w") as f:
        json.dump(predictions, f, indent=4)
    with open(os.path.join(OUT, "eval_cases.json"), "w") as f:
        json.dump({"totals": totals, "printed": json.dumps(totals), "questions": per_question, "normalize": normalize_cases}, f, indent=1,
                  ensure_ascii=False)
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
