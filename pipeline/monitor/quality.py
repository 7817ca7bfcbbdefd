"""Model quality: ground truth joined with the captured answers by `inferenceId`, scored by scikit-learn.

Ground truth is JSON Lines, one `{"inferenceId": ..., "groundTruth": ...}` per line (SageMaker's merge key): a value
for a one-row request, or a list of one value per row. Answers whose predict output is a category are scored as a
classification (accuracy, precision, recall, F1: binary for two classes 0/1, else macro-averaged; the area under
the ROC curve where the answers carry a two-column probability output), numeric ones as a regression (MAE, RMSE).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from pipeline.monitor.baseline import category
from pipeline.monitor.captures import Observation


def read_ground_truth(lines: Iterable[bytes], into: dict[str, Any], skipped: dict[str, int]) -> None:
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            into[str(record["inferenceId"])] = record["groundTruth"]
        except (ValueError, KeyError, TypeError):
            skipped["ground truth line without inferenceId and groundTruth"] = (
                skipped.get("ground truth line without inferenceId and groundTruth", 0) + 1)


def _probability_output(observation: Observation, predict_output: str) -> str | None:
    for name, values in observation.outputs.items():
        if name != predict_output and values.shape[1] == 2 and np.issubdtype(values.dtype, np.floating):
            return name
    return None


def quality(observations: list[Observation], truth: dict[str, Any], predict_output: str,
            classification: bool) -> dict[str, Any] | None:
    """None without ground truth; else the metrics over the joined rows, with joined and unjoined counts."""
    if not truth:
        return None
    predicted, actual, scores = [], [], []
    has_scores = True
    unjoined = 0
    for observation in observations:
        answer = observation.outputs.get(predict_output)
        labels = truth.get(observation.inference_id)
        if answer is None or labels is None:
            unjoined += observation.rows
            continue
        labels = labels if isinstance(labels, list) else [labels]
        if len(labels) != observation.rows:
            unjoined += observation.rows
            continue
        predicted.extend(answer[:, 0].tolist())
        actual.extend(labels)
        probability = _probability_output(observation, predict_output)
        if probability is None:
            has_scores = False
        else:
            scores.extend(observation.outputs[probability][:, 1].tolist())
    result: dict[str, Any] = {"joined": len(predicted), "unjoined": unjoined,
                              "ground_truth_records": len(truth)}
    if not predicted:
        return {**result, "note": "no captured answer matched a ground truth inferenceId"}
    from sklearn import metrics

    if not classification:
        errors = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
        return {**result, "problem": "regression", "mae": float(np.abs(errors).mean()),
                "rmse": float(np.sqrt((errors ** 2).mean()))}
    predicted_keys = [category(value) for value in predicted]
    actual_keys = [category(value) for value in actual]
    classes = sorted(set(predicted_keys) | set(actual_keys))
    binary = set(classes) <= {"0", "1"}
    average = "binary" if binary else "macro"
    options = {"pos_label": "1"} if binary else {}
    result.update(problem="classification", classes=classes,
                  accuracy=float(metrics.accuracy_score(actual_keys, predicted_keys)),
                  precision=float(metrics.precision_score(actual_keys, predicted_keys, average=average,
                                                          zero_division=0, **options)),
                  recall=float(metrics.recall_score(actual_keys, predicted_keys, average=average, zero_division=0,
                                                    **options)),
                  f1=float(metrics.f1_score(actual_keys, predicted_keys, average=average, zero_division=0,
                                            **options)))
    if binary and has_scores and len(set(actual_keys)) == 2:
        result["auc"] = float(metrics.roc_auc_score([int(key) for key in actual_keys], scores))
    return result
