"""Whether a window's column drifted from its baseline: the method chosen for the sample size, by SciPy.

Numeric columns: with up to `small_sample` values in the window, the two-sample Kolmogorov-Smirnov test against the
baseline's quantile sample; with more, a test would flag differences too small to matter, so the Wasserstein
distance divided by the baseline's standard deviation is compared with a threshold instead. Categorical columns:
the chi-squared test of homogeneity of the two count tables, then the Jensen-Shannon distance. The tests' level is
family-wise: `p_value` divided by the number of columns compared (Bonferroni), so a model with 30 features does not
raise 30 times the false alarms of one with a single feature. The defaults' false-alarm rate is measured on samples
of the baseline data itself (bench/monitor/false_alarms.py, in the README).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from pipeline.monitor.baseline import NUMERIC, ColumnBaseline, category


@dataclass(frozen=True)
class DriftSettings:
    p_value: float = 0.05
    """Family-wise level of the tests (KS, chi-squared): a window of the baseline's own distribution is flagged
    on any of its columns at most this often."""
    numeric_distance: float = 0.1
    """Wasserstein distance, in baseline standard deviations, at which a large window's numeric column drifted."""
    categorical_distance: float = 0.1
    """Jensen-Shannon distance (base 2, 0..1) at which a large window's categorical column drifted."""
    small_sample: int = 1000
    """Windows of up to this many values are tested; larger ones are measured by distance."""


def numeric_values(values: np.ndarray) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        converted = []
        for value in np.asarray(values, dtype=object).ravel():
            try:
                converted.append(float(value))
            except (TypeError, ValueError):
                converted.append(np.nan)
        return np.asarray(converted, dtype=np.float64)


def describe(values: np.ndarray, kind: str) -> dict[str, Any]:
    """What a window's column holds, without a baseline: completeness and range (numeric) or categories."""
    if kind == NUMERIC:
        numbers = numeric_values(values)
        finite = numbers[np.isfinite(numbers)]
        return {"records": len(numbers), "missing": int(len(numbers) - len(finite)),
                "min": float(finite.min()) if len(finite) else None,
                "max": float(finite.max()) if len(finite) else None}
    present = [value for value in np.asarray(values, dtype=object).ravel() if value is not None]
    return {"records": len(values), "missing": len(values) - len(present),
            "categories": dict(Counter(category(_plain(value)) for value in present).most_common(20))}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def compare(baseline: ColumnBaseline, values: np.ndarray, family: int, settings: DriftSettings) -> dict[str, Any]:
    """The column's drift result: method, statistic, threshold, drift, and what the window holds."""
    level = settings.p_value / max(family, 1)
    if baseline.kind == NUMERIC:
        return _numeric(baseline, baseline.at_precision(numeric_values(values)), level, settings)
    return _categorical(baseline, np.asarray(values, dtype=object).ravel(), level, settings)


def _numeric(baseline: ColumnBaseline, numbers: np.ndarray, level: float, settings: DriftSettings) -> dict[str, Any]:
    finite = numbers[np.isfinite(numbers)]
    result: dict[str, Any] = {"kind": NUMERIC, "records": len(numbers), "missing": int(len(numbers) - len(finite))}
    if not len(finite) or not baseline.quantiles:
        return {**result, "method": "none", "statistic": None, "threshold": None, "drift": False,
                "out_of_range": 0, "note": "no values to compare" if not len(finite) else "the baseline has none"}
    reference = np.asarray(baseline.quantiles)
    result["out_of_range"] = int(np.count_nonzero((finite < baseline.min) | (finite > baseline.max)))
    result["window"] = {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean())}
    if len(finite) <= settings.small_sample:
        test = stats.ks_2samp(finite, reference)
        return {**result, "method": "ks", "statistic": float(test.statistic), "p_value": float(test.pvalue),
                "threshold": level, "drift": bool(test.pvalue < level)}
    scale = baseline.std if baseline.std else 1.0
    measured = float(stats.wasserstein_distance(finite, reference)) / scale
    return {**result, "method": "wasserstein", "statistic": measured, "threshold": settings.numeric_distance,
            "drift": measured >= settings.numeric_distance}


def _categorical(baseline: ColumnBaseline, values: np.ndarray, level: float, settings: DriftSettings,
                 ) -> dict[str, Any]:
    present = [category(_plain(value)) for value in values if value is not None]
    result: dict[str, Any] = {"kind": "categorical", "records": len(values), "missing": len(values) - len(present)}
    if not present or not baseline.frequencies:
        return {**result, "method": "none", "statistic": None, "threshold": None, "drift": False,
                "out_of_range": 0, "note": "no values to compare" if not present else "the baseline has none"}
    window = Counter(present)
    names = sorted(set(baseline.frequencies) | set(window))
    reference = np.array([baseline.frequencies.get(name, 0) for name in names], dtype=np.float64)
    observed = np.array([window.get(name, 0) for name in names], dtype=np.float64)
    result["out_of_range"] = int(sum(count for name, count in window.items() if name not in baseline.frequencies))
    result["window"] = {"categories": dict(window.most_common(20))}
    if len(present) <= settings.small_sample:
        if len(names) < 2:
            return {**result, "method": "chi2", "statistic": 0.0, "p_value": 1.0, "threshold": level, "drift": False}
        test = stats.chi2_contingency(np.vstack([reference, observed]))
        return {**result, "method": "chi2", "statistic": float(test.statistic), "p_value": float(test.pvalue),
                "threshold": level, "drift": bool(test.pvalue < level)}
    measured = float(distance.jensenshannon(reference / reference.sum(), observed / observed.sum(), base=2))
    return {**result, "method": "jensen-shannon", "statistic": measured, "threshold": settings.categorical_distance,
            "drift": measured >= settings.categorical_distance}
