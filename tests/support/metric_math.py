"""CloudWatch metric math, for one period, for the part of the language the stacks' alarms and scaling policies use:
so a test can ask what an expression is worth when, say, three requests wait and no task runs.

As the CloudWatch User Guide documents it ("Metric math syntax and functions"): arithmetic + - * /; comparison
operators == != < <= > >= (1 when true, 0 when false); logical operators AND (&&), OR (||), NOT (!) on non-zero as
true; IF(condition, trueValue, falseValue); FILL(m, value), which gives `value` where `m` has no data point. A metric
without a data point in the period is missing; arithmetic, comparisons and IF on a missing value give no data
point (None), which is what FILL exists for. Division by zero gives no data point. Anything else raises, so an
expression this cannot read fails a test instead of passing it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping

Value = float | None

_OPERATORS = (("&&", " and "), ("||", " or "), ("!=", " != "), ("!", " not "))
_WORDS = {"AND": "and", "OR": "or", "NOT": "not"}


def _python(expression: str) -> str:
    text = expression
    for symbol, word in _OPERATORS:
        text = text.replace(symbol, word) if symbol != "!" else re.sub(r"!(?!=)", " not ", text)
    return re.sub(r"\b(AND|OR|NOT)\b", lambda match: _WORDS[match.group(1)], text).strip()


def evaluate(expression: str, values: Mapping[str, Value]) -> Value:
    """The expression's value in one period; `values`: metric id -> its data point (None: missing)."""
    tree = ast.parse(_python(expression), mode="eval")
    return _value(tree.body, values)


def _value(node: ast.AST, values: Mapping[str, Value]) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise KeyError(f"no metric or expression {node.id!r}")
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, values)
        if operand is None:
            return None
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.Not):
            return 0.0 if operand else 1.0
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, values), _value(node.right, values)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return None if right == 0 else left / right
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right = _value(node.left, values), _value(node.comparators[0], values)
        if left is None or right is None:
            return None
        compare = {ast.Eq: left == right, ast.NotEq: left != right, ast.Lt: left < right, ast.LtE: left <= right,
                   ast.Gt: left > right, ast.GtE: left >= right}
        return 1.0 if compare[type(node.ops[0])] else 0.0
    if isinstance(node, ast.BoolOp):
        operands = [_value(operand, values) for operand in node.values]
        if any(operand is None for operand in operands):
            return None
        truth = all(operands) if isinstance(node.op, ast.And) else any(operands)
        return 1.0 if truth else 0.0
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, arguments = node.func.id, node.args
        if name == "FILL" and len(arguments) == 2:
            filled = _value(arguments[0], values)
            return filled if filled is not None else _value(arguments[1], values)
        if name == "IF" and len(arguments) == 3:
            condition = _value(arguments[0], values)
            if condition is None:
                return None
            return _value(arguments[1] if condition else arguments[2], values)
    raise ValueError(f"not in the metric math this evaluator reads: {ast.unparse(node)}")


def evaluate_queries(queries: list[dict], values: Mapping[str, Value]) -> Value:
    """The value of the one query that returns data, from synthesized metric queries (an alarm's `metric_query` or
    a target tracking policy's `metrics`): metrics take their value from `values` by id, expressions are computed
    in the order given (CloudWatch lets an expression use the ones before it)."""
    known: dict[str, Value] = {}
    for query in queries:
        known[query["id"]] = evaluate(query["expression"], known) if query.get("expression") else values.get(
            query["id"])
    (returned,) = [query["id"] for query in queries if query.get("return_data")]
    return known[returned]
