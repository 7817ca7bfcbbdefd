"""The metric math evaluator held to CloudWatch's documented semantics, case by case."""

from __future__ import annotations

import pytest

from tests.support.metric_math import evaluate, evaluate_queries


@pytest.mark.parametrize(("expression", "values", "expected"), [
    ("m1 + m2", {"m1": 2, "m2": 3}, 5.0),
    ("m1 / m2", {"m1": 6, "m2": 3}, 2.0),
    ("m1 / m2", {"m1": 6, "m2": 0}, None),           # division by zero: no data point
    ("m1 + m2", {"m1": 2, "m2": None}, None),        # a missing value propagates
    ("FILL(m1, 0) + m2", {"m1": None, "m2": 3}, 3.0),
    ("FILL(m1, 7)", {"m1": 2}, 2.0),
    ("m1 > 0", {"m1": 2}, 1.0),
    ("m1 == 0", {"m1": 2}, 0.0),
    ("m1 != 0", {"m1": 2}, 1.0),
    ("m1 > 0 AND m2 == 0", {"m1": 1, "m2": 0}, 1.0),
    ("m1 > 0 && m2 == 0", {"m1": 1, "m2": 2}, 0.0),
    ("m1 > 0 OR m2 > 0", {"m1": 0, "m2": 2}, 1.0),
    ("m1 > 0 || m2 > 0", {"m1": 0, "m2": 0}, 0.0),
    ("NOT m1", {"m1": 0}, 1.0),
    ("!m1", {"m1": 3}, 0.0),
    ("IF(m1 > 1, m1, 1)", {"m1": 3}, 3.0),
    ("IF(m1 > 1, m1, 1)", {"m1": 0.5}, 1.0),
    ("IF(m1 > 1, m1, 1)", {"m1": None}, None),      # no condition, no data point
])
def test_documented_semantics(expression, values, expected):
    assert evaluate(expression, values) == expected


def test_what_it_cannot_read_raises_instead_of_passing():
    with pytest.raises(ValueError, match="not in the metric math"):
        evaluate("RATE(m1)", {"m1": 1})
    with pytest.raises(KeyError, match="no metric or expression 'm2'"):
        evaluate("m1 + m2", {"m1": 1})


def test_queries_compute_expressions_in_order_and_return_the_one_that_returns_data():
    queries = [{"id": "a", "return_data": False}, {"id": "b", "return_data": False, "expression": "a * 2"},
               {"id": "c", "return_data": True, "expression": "b + 1"}]
    assert evaluate_queries(queries, {"a": 4}) == 9.0
