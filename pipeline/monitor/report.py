"""One variant's report for one window: drift per feature and of the predictions, and quality, as a JSON document.

Records are compared with the baseline of the model version that answered them. The document's `features` and
`prediction` are those of the version that answered most rows in the window (normally the live one); each other
version's are under its entry in `model_versions`. A version without a baseline is described by completeness and
value ranges only, and the document says so. A window without captures is `"status": "no data"`, not an error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.monitor.baseline import CATEGORICAL, NUMERIC, Baseline
from pipeline.monitor.captures import PREDICT_INPUT, PREDICT_OUTPUT, Observation, by_version
from pipeline.monitor.drift import DriftSettings, compare, describe
from pipeline.monitor.quality import quality

NO_DATA, NO_BASELINE, OK = "no data", "no baseline", "ok"


def severity(result: dict[str, Any]) -> float:
    """How far past its threshold a result is (above 1: drifted), to list the worst first."""
    statistic, threshold = result.get("statistic"), result.get("threshold")
    if statistic is None or not threshold:
        return 0.0
    if "p_value" in result:
        return threshold / max(result["p_value"], 1e-300)
    return statistic / threshold


def _named_tensors(observation: Observation, baseline: Baseline | None) -> tuple[dict, dict]:
    """The observation's inputs and outputs under the model's tensor names (a `/predict` request has none)."""
    inputs, outputs = observation.inputs, observation.outputs
    if observation.predict_route and baseline is not None:
        input_names = list(baseline.input_names)
        if len(input_names) == 1:
            inputs = {input_names[0]: inputs[PREDICT_INPUT]}
        outputs = {baseline.model["predict_output"]: outputs[PREDICT_OUTPUT]}
    return inputs, outputs


def _stack(observations: list[Observation], baseline: Baseline | None, skipped: Counter,
           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Observation]]:
    """Rows of every input and output over the observations; one whose widths differ from the first's is skipped."""
    inputs: dict[str, list[np.ndarray]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    widths: dict[str, int] = {}
    kept = []
    for observation in observations:
        named_inputs, named_outputs = _named_tensors(observation, baseline)
        if any(widths.setdefault(name, values.shape[1]) != values.shape[1] for name, values in named_inputs.items()):
            skipped["input width differs within the window"] += 1
            continue
        for name, values in named_inputs.items():
            inputs.setdefault(name, []).append(values)
        for name, values in named_outputs.items():
            outputs.setdefault(name, []).append(values)
        kept.append(observation)

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        common = np.result_type(*parts) if all(part.dtype != object for part in parts) else object
        return np.concatenate([part.astype(common) for part in parts])

    # An output some answers lack (a `/predict` answer carries the predict output only) is compared over those
    # that have it.
    return ({name: joined(parts) for name, parts in inputs.items()},
            {name: joined(parts) for name, parts in outputs.items()}, kept)


def _kind(values: np.ndarray) -> str:
    return NUMERIC if np.issubdtype(values.dtype, np.floating) else CATEGORICAL


def _without_baseline(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    found = {}
    for tensor, values in tensors.items():
        names = [tensor] if values.shape[1] == 1 else [f"{tensor}[{i}]" for i in range(values.shape[1])]
        for index, name in enumerate(names):
            found[name] = {"method": "none", "drift": None, **describe(values[:, index], _kind(values))}
    return found


def _compared(columns, tensors: dict[str, np.ndarray], settings: DriftSettings) -> dict[str, Any]:
    present = [column for column in columns
               if column.tensor in tensors and column.index < tensors[column.tensor].shape[1]]
    results = {column.name: compare(column, tensors[column.tensor][:, column.index], len(present), settings)
               for column in present}
    return dict(sorted(results.items(), key=lambda item: (not item[1]["drift"], -severity(item[1]))))


def _plot_data(columns, tensors: dict[str, np.ndarray]) -> dict[str, tuple[Any, np.ndarray]]:
    return {column.name: (column, tensors[column.tensor][:, column.index]) for column in columns
            if column.tensor in tensors and column.index < tensors[column.tensor].shape[1]}


def analyse_version(observations: list[Observation], baseline: Baseline | None, truth: dict[str, Any],
                    settings: DriftSettings, skipped: Counter) -> dict[str, Any]:
    inputs, outputs, kept = _stack(observations, baseline, skipped)
    rows = sum(observation.rows for observation in kept)
    if baseline is None:
        predict_output = next(iter(outputs), PREDICT_OUTPUT)
        classification = predict_output in outputs and _kind(outputs[predict_output]) == CATEGORICAL
        return {"records": len(kept), "rows": rows, "baseline": False,
                "features": _without_baseline(inputs), "prediction": _without_baseline(outputs),
                "quality": quality(kept, truth, predict_output, classification)}
    features = _compared(baseline.features, inputs, settings)
    predictions = _compared(baseline.predictions, outputs, settings)
    predict_output = baseline.model["predict_output"]
    classification = any(column.tensor == predict_output and column.kind == CATEGORICAL
                         for column in baseline.predictions)
    drifted = [name for name, result in features.items() if result["drift"]]
    missing_features = [column.name for column in baseline.features if column.name not in features]
    return {"records": len(kept), "rows": rows, "baseline": True,
            "baseline_data": baseline.data, "baseline_model": {key: baseline.model.get(key)
                                                               for key in ("name", "version", "sha256")},
            "features": features, "drifted_features": drifted,
            "share_drifted": len(drifted) / len(features) if features else 0.0,
            "missing_features": missing_features,
            "prediction": predictions, "prediction_drift": any(result["drift"] for result in predictions.values()),
            "quality": quality(kept, truth, predict_output, classification),
            "_plots": {**_plot_data(baseline.features, inputs), **_plot_data(baseline.predictions, outputs)}}


@dataclass
class Analysis:
    document: dict[str, Any]
    """The report as JSON (report.json)."""
    plots: dict[str, tuple[Any, np.ndarray]] = field(default_factory=dict)
    """Column name -> (its baseline, the window's values), for the main version: what report.html draws."""


def analyse(endpoint: str, variant: str, observations: list[Observation],
            baseline_of: Callable[[str], Baseline | None], truth: dict[str, Any], settings: DriftSettings,
            window: dict[str, str | None], skipped: Counter, files: int) -> Analysis:
    """The variant's report over the window (its observations only)."""
    document: dict[str, Any] = {"endpoint": endpoint, "variant": variant, "window": window, "files": files,
                                "skipped": dict(skipped), "settings": settings.__dict__}
    if not observations:
        return Analysis({**document, "status": NO_DATA, "records": 0, "rows": 0, "model_versions": [], "features": {},
                "prediction": {}, "quality": None,
                "notes": ["no captured requests in this window: is the endpoint receiving traffic, is capture on, "
                          "and has the capture export run for these hours?"]})
    versions = []
    for version, group in by_version(observations):
        baseline = baseline_of(version)
        versions.append({"version": version, **analyse_version(group, baseline, truth, settings, skipped)})
    main = versions[0]
    plots = main.pop("_plots", {})
    for entry in versions[1:]:
        entry.pop("_plots", None)
    notes = [f"model version {entry['version']} has no baseline: completeness and value ranges only; store one "
             f"with `python -m pipeline.models promote --baseline FILE`" for entry in versions if not entry["baseline"]]
    document.update(
        status=OK if main["baseline"] else NO_BASELINE, skipped=dict(skipped),
        records=sum(entry["records"] for entry in versions), rows=sum(entry["rows"] for entry in versions),
        model_versions=[{key: entry[key] for key in ("version", "records", "rows", "baseline")}
                        | {"drifted_features": entry.get("drifted_features", [])}
                        | ({"features": entry["features"], "prediction": entry["prediction"]} if entry is not main
                           else {}) for entry in versions],
        model_version=main["version"], features=main["features"], prediction=main["prediction"],
        drifted_features=main.get("drifted_features", []), share_drifted=main.get("share_drifted"),
        prediction_drift=main.get("prediction_drift"), missing_features=main.get("missing_features", []),
        baseline=({"data": main["baseline_data"], "model": main["baseline_model"]} if main["baseline"] else None),
        quality=main["quality"], notes=notes)
    return Analysis(_finite(document), plots)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
