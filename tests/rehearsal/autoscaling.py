"""What CloudWatch and Application Auto Scaling would do with the applied alarms and scaling policies, done: the
rehearsal's stand-in for them, reading everything from the emulated account's APIs (what Terraform applied), since
moto neither publishes AWS's own metrics, nor evaluates alarms, nor runs scaling policies.

- Metrics: the ones the alarms and policies read, sampled as AWS publishes them: SQS's queue depths
  (`AWS/SQS` ApproximateNumberOfMessagesVisible / NotVisible, from the queue's attributes) and Container Insights'
  `ECS/ContainerInsights` RunningTaskCount (the service's running tasks, only where the cluster has Container Insights
  on). Samples fall in one-minute periods; a period's datapoint is the query's statistic over its samples.
- Alarms (CloudWatch User Guide, "Evaluating an alarm"): evaluated once a minute, on complete periods only, over the
  last `EvaluationPeriods` datapoints: ALARM with `DatapointsToAlarm` breaching, OK otherwise, INSUFFICIENT_DATA when
  every datapoint is missing (TreatMissingData `missing`). Metric math by tests/support/metric_math.py.
- Step scaling (Application Auto Scaling User Guide, "Step scaling policies"): an alarm in ALARM invokes its policies
  once per minute for as long as it stays there (the exception CloudWatch makes for scaling actions); the step
  adjustment whose bounds hold (metric - threshold) applies; ChangeInCapacity, ExactCapacity or
  PercentChangeInCapacity; the result clamped to the scalable target's min and max capacity. During a scale-out's
  cooldown, capacity it added counts toward the next scale-out; no scale-in runs during a cooldown.
- Target tracking: scale out when the tracked metric is above the target for 3 consecutive minutes, in when below 90%
  of it for 15 (the alarms Application Auto Scaling creates), to ceil(capacity x metric / target); never from zero
  capacity (it multiplies); scale-in not when disabled; both held by their cooldowns.
The new capacity is the ECS service's desired count (ecs:UpdateService, as Application Auto Scaling's service-linked
role does it); ECS (tests/rehearsal/ecs_agent.py) then starts or stops tasks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.metric_math import Value, evaluate

PERIOD_SECONDS = 60
TRACKING_OUT_PERIODS = 3
TRACKING_IN_PERIODS = 15
TRACKING_IN_RATIO = 0.9

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]
"""(namespace, metric name, sorted dimensions)."""


def metric_key(metric: Mapping[str, Any]) -> MetricKey:
    """An API metric (`Namespace`, `MetricName`, `Dimensions` [{Name, Value}]) as a key."""
    dimensions = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
    return metric["Namespace"], metric["MetricName"], dimensions


def statistic(samples: list[float], stat: str) -> Value:
    if not samples:
        return None
    return {"Maximum": max, "Minimum": min, "Sum": sum, "SampleCount": len,
            "Average": lambda values: sum(values) / len(values)}[stat](samples)


@dataclass
class Periods:
    """Samples of each metric in one-minute periods (period start -> samples)."""

    samples: dict[MetricKey, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, now: float, values: Mapping[MetricKey, float]) -> None:
        start = int(now // PERIOD_SECONDS) * PERIOD_SECONDS
        for key, value in values.items():
            self.samples.setdefault(key, {}).setdefault(start, []).append(value)

    def datapoint(self, key: MetricKey, start: int, stat: str) -> Value:
        return statistic(self.samples.get(key, {}).get(start, []), stat)


def alarm_queries(alarm: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An alarm's metric queries: its `Metrics`, or its single metric as one query."""
    if alarm.get("Metrics"):
        return alarm["Metrics"]
    metric = {"Namespace": alarm["Namespace"], "MetricName": alarm["MetricName"],
              "Dimensions": alarm.get("Dimensions", [])}
    return [{"Id": "m", "ReturnData": True, "MetricStat": {"Metric": metric, "Period": alarm["Period"],
                                                           "Stat": alarm.get("Statistic", "Average")}}]


def query_value(queries: list[Mapping[str, Any]], periods: Periods, start: int) -> Value:
    """The returned query's value in the period starting at `start`: metric queries from the period's datapoints,
    then expressions, each once the queries it names are known (an alarm's queries come in any order: Terraform
    holds them as a set)."""
    known: dict[str, Value] = {}
    expressions = {}
    for query in queries:
        if query.get("Expression"):
            expressions[query["Id"]] = query["Expression"]
        else:
            stat = query["MetricStat"]
            known[query["Id"]] = periods.datapoint(metric_key(stat["Metric"]), start, stat["Stat"])
    while expressions:
        progressed = False
        for query_id, expression in list(expressions.items()):
            try:
                known[query_id] = evaluate(expression, known)
            except KeyError as missing:
                if missing.args[0].split("'")[1] not in expressions:
                    raise
                continue
            del expressions[query_id]
            progressed = True
        if not progressed:
            raise ValueError(f"metric math expressions {sorted(expressions)} name each other in a cycle")
    returned = [query["Id"] for query in queries if query.get("ReturnData", len(queries) == 1)]
    if len(returned) != 1:
        raise ValueError(f"metric queries {[q['Id'] for q in queries]}: {len(returned)} return data; CloudWatch "
                         "needs exactly one")
    return known[returned[0]]


BREACHES: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}


def alarm_state(datapoints: list[Value], comparison: str, threshold: float, datapoints_to_alarm: int) -> str:
    """ALARM, OK or INSUFFICIENT_DATA for the evaluation range's datapoints (oldest first), missing data treated
    as `missing` (neither breaching nor not)."""
    present = [value for value in datapoints if value is not None]
    if not present:
        return "INSUFFICIENT_DATA"
    breaching = sum(1 for value in present if BREACHES[comparison](value, threshold))
    return "ALARM" if breaching >= datapoints_to_alarm else "OK"


def step_adjustment(steps: list[Mapping[str, Any]], difference: float) -> int | None:
    """The adjustment of the step whose bounds hold `difference` (metric - threshold). Above the threshold a lower
    bound is inclusive and an upper exclusive, below it the other way round; at the threshold a step that reaches
    zero from either side holds it."""
    for step in steps:
        lower, upper = step.get("MetricIntervalLowerBound"), step.get("MetricIntervalUpperBound")
        if difference > 0:
            holds = (lower is None or difference >= lower) and (upper is None or difference < upper)
        elif difference < 0:
            holds = (lower is None or difference > lower) and (upper is None or difference <= upper)
        else:
            holds = (lower is None or lower <= 0) and (upper is None or upper >= 0)
        if holds:
            return int(step["ScalingAdjustment"])
    return None


def adjusted(adjustment_type: str, adjustment: int, capacity: int, minimum_magnitude: int | None = None) -> int:
    if adjustment_type == "ExactCapacity":
        return adjustment
    if adjustment_type == "ChangeInCapacity":
        return capacity + adjustment
    if adjustment_type == "PercentChangeInCapacity":
        exact = capacity * adjustment / 100
        # Rounded toward zero, except that a change between -1 and 1 (not 0) is one task; then the magnitude floor.
        change = math.trunc(exact) if abs(exact) >= 1 or exact == 0 else int(math.copysign(1, exact))
        if minimum_magnitude and abs(change) < minimum_magnitude:
            change = int(math.copysign(minimum_magnitude, adjustment))
        return capacity + change
    raise ValueError(f"adjustment type {adjustment_type!r} is not Application Auto Scaling's")


def tracked_capacity(capacity: int, value: float, target: float) -> int:
    """Target tracking's proportional rule: the capacity that brings the metric to its target."""
    return math.ceil(capacity * value / target) if capacity > 0 else 0


@dataclass
class Activity:
    """The last scaling activity of a scalable target: when, from which capacity, in which direction."""

    at: float
    before: int
    out: bool
    cooldown: int


@dataclass
class ScalableTarget:
    resource_id: str
    minimum: int
    maximum: int
    last: Activity | None = None

    @property
    def cluster_and_service(self) -> tuple[str, str]:
        _, cluster, service = self.resource_id.split("/", 2)
        return cluster, service


def scaled(target: ScalableTarget, capacity: int, wanted: int, cooldown: int, now: float) -> int | None:
    """The new capacity, or None when nothing changes: clamped to the target's bounds; a scale-out during a
    scale-out's cooldown adds only beyond what that one added; no scale-in during a cooldown."""
    wanted = min(max(wanted, target.minimum), target.maximum)
    if wanted == capacity:
        return None
    out = wanted > capacity
    last = target.last
    in_cooldown = last is not None and now < last.at + last.cooldown
    if in_cooldown and not out:
        return None
    if in_cooldown and out and last.out:
        wanted = max(capacity, last.before + (wanted - capacity))  # what the last scale-out added counts
        if wanted == capacity:
            return None
    target.last = Activity(now, capacity, out, cooldown)
    return wanted


class ApplicationAutoScaling:
    """The stand-in: `tick(now)` samples the metrics and, on each completed minute, evaluates every alarm with a
    scaling policy among its actions and every target tracking policy, and sets the services' desired counts."""

    def __init__(self, client: Callable[[str], Any], running_tasks: Callable[[str, str], int],
                 say: Callable[[str], None]):
        self.client = client
        self.running_tasks = running_tasks
        self.say = say
        self.periods = Periods()
        self.evaluated_period: int | None = None
        self.targets: dict[str, ScalableTarget] = {}
        self.alarm_states: dict[str, str] = {}
        self.activities: list[str] = []
        """Every scaling activity, as `<resource id>: <from> -> <to> (<why>)`."""
        self._queue_urls: dict[str, str] = {}
        self._insights: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="application-auto-scaling", daemon=True)
        self.failures: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self.tick(time.time())
            except Exception as error:  # noqa: BLE001 - reported; the rehearsal decides
                if not self.failures or self.failures[-1] != f"{type(error).__name__}: {error}":
                    self.say(f"application auto scaling stand-in: {type(error).__name__}: {error}")
                self.failures.append(f"{type(error).__name__}: {error}")

    # --- what is applied -------------------------------------------------------------------------------------------
    def _policies(self) -> list[dict[str, Any]]:
        return self.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="ecs")[
            "ScalingPolicies"]

    def _scaling_alarms(self, policies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Alarms that invoke a step scaling policy (target tracking's own alarms are evaluated by `_track`)."""
        arns = {policy["PolicyARN"] for policy in policies if policy["PolicyType"] == "StepScaling"}
        alarms = self.client("cloudwatch").describe_alarms()["MetricAlarms"]
        return [alarm for alarm in alarms if arns & set(alarm.get("AlarmActions", []))]

    def _refresh_targets(self) -> None:
        found = self.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
            "ScalableTargets"]
        for target in found:
            known = self.targets.get(target["ResourceId"])
            if known is None:
                self.targets[target["ResourceId"]] = ScalableTarget(target["ResourceId"], target["MinCapacity"],
                                                                    target["MaxCapacity"])
            else:
                known.minimum, known.maximum = target["MinCapacity"], target["MaxCapacity"]
        for gone in set(self.targets) - {target["ResourceId"] for target in found}:
            del self.targets[gone]

    # --- metrics ---------------------------------------------------------------------------------------------------
    def _metrics_read(self, alarms: list[dict[str, Any]], policies: list[dict[str, Any]]) -> set[MetricKey]:
        queries = [query for alarm in alarms for query in alarm_queries(alarm)]
        queries += [query for policy in policies for query in policy.get(
            "TargetTrackingScalingPolicyConfiguration", {}).get("CustomizedMetricSpecification", {}).get(
            "Metrics", [])]
        return {metric_key(query["MetricStat"]["Metric"]) for query in queries if query.get("MetricStat")}

    def sample(self, keys: set[MetricKey]) -> dict[MetricKey, float]:
        """What AWS would publish now for each metric read (a metric AWS would not publish has no sample)."""
        values: dict[MetricKey, float] = {}
        for key in keys:
            namespace, name, dimensions = key
            value = self._sample(namespace, name, dict(dimensions))
            if value is not None:
                values[key] = value
        return values

    def _sample(self, namespace: str, name: str, dimensions: dict[str, str]) -> float | None:
        if namespace == "AWS/SQS" and set(dimensions) == {"QueueName"}:
            attribute = {"ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
                         "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
                         "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed"}.get(name)
            url = self._queue_url(dimensions["QueueName"])
            if attribute is None or url is None:
                return None
            attributes = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])
            return float(attributes["Attributes"][attribute])
        if namespace == "ECS/ContainerInsights" and name == "RunningTaskCount" and set(dimensions) == {
                "ClusterName", "ServiceName"}:
            if not self._container_insights(dimensions["ClusterName"]):
                return None  # no Container Insights, no metric: the alarms see missing data
            return float(self.running_tasks(dimensions["ClusterName"], dimensions["ServiceName"]))
        return None

    def _queue_url(self, name: str) -> str | None:
        if name not in self._queue_urls:
            sqs = self.client("sqs")
            try:
                self._queue_urls[name] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                return None
        return self._queue_urls[name]

    def _container_insights(self, cluster: str) -> bool:
        if cluster not in self._insights:
            (described,) = self.client("ecs").describe_clusters(clusters=[cluster], include=["SETTINGS"])[
                "clusters"] or [{}]
            self._insights[cluster] = any(setting.get("name") == "containerInsights" and setting.get("value") in (
                "enabled", "enhanced") for setting in described.get("settings", []))
        return self._insights[cluster]

    # --- one pass --------------------------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        policies = self._policies()
        if not policies:
            return
        alarms = self._scaling_alarms(policies)
        self.periods.add(now, self.sample(self._metrics_read(alarms, policies)))
        completed = int(now // PERIOD_SECONDS) * PERIOD_SECONDS - PERIOD_SECONDS
        if self.evaluated_period == completed:
            return
        self.evaluated_period = completed
        self._refresh_targets()
        by_arn = {policy["PolicyARN"]: policy for policy in policies}
        for alarm in alarms:
            self._evaluate_alarm(alarm, by_arn, completed, now)
        for policy in policies:
            if policy["PolicyType"] == "TargetTrackingScaling":
                self._track(policy, completed, now)

    def _evaluate_alarm(self, alarm: dict[str, Any], policies: dict[str, dict[str, Any]], completed: int,
                        now: float) -> None:
        count = alarm["EvaluationPeriods"]
        starts = [completed - PERIOD_SECONDS * back for back in reversed(range(count))]
        datapoints = [query_value(alarm_queries(alarm), self.periods, start) for start in starts]
        state = alarm_state(datapoints, alarm["ComparisonOperator"], alarm["Threshold"],
                            alarm.get("DatapointsToAlarm") or count)
        before = self.alarm_states.get(alarm["AlarmName"])
        self.alarm_states[alarm["AlarmName"]] = state
        if before is not None and before != state:
            self.say(f"alarm {alarm['AlarmName']}: {before} -> {state} (datapoints {datapoints}, minute ending "
                     f"{time.strftime('%H:%M:%S', time.gmtime(completed + PERIOD_SECONDS))})")
        if state != "ALARM":
            return
        value = datapoints[-1] if datapoints[-1] is not None else next(v for v in datapoints if v is not None)
        for arn in alarm.get("AlarmActions", []):
            policy = policies.get(arn)
            if policy is None or policy["PolicyType"] != "StepScaling":
                continue
            configuration = policy["StepScalingPolicyConfiguration"]
            adjustment = step_adjustment(configuration.get("StepAdjustments", []), value - alarm["Threshold"])
            if adjustment is None:
                continue
            self._apply(policy, lambda capacity, configuration=configuration, adjustment=adjustment: adjusted(
                configuration["AdjustmentType"], adjustment, capacity, configuration.get("MinAdjustmentMagnitude")),
                configuration.get("Cooldown", 0), f"alarm {alarm['AlarmName']} in ALARM at {value:g}, step policy "
                f"{policy['PolicyName']}", now)

    def _track(self, policy: dict[str, Any], completed: int, now: float) -> None:
        configuration = policy["TargetTrackingScalingPolicyConfiguration"]
        target_value = configuration["TargetValue"]
        specification = configuration.get("CustomizedMetricSpecification")
        if specification is None or "Metrics" not in specification:
            return  # predefined metrics (CPU, memory, requests per target) are not sampled here
        window = max(TRACKING_OUT_PERIODS, TRACKING_IN_PERIODS)
        values = [query_value(specification["Metrics"], self.periods, completed - PERIOD_SECONDS * back)
                  for back in reversed(range(window))]
        recent = values[-TRACKING_OUT_PERIODS:]
        if all(v is not None and v > target_value for v in recent):
            latest = recent[-1]
            self._apply(policy, lambda capacity: max(capacity, tracked_capacity(capacity, latest, target_value)),
                        configuration.get("ScaleOutCooldown", 300),
                        f"target tracking {policy['PolicyName']}: {latest:g} above {target_value:g}", now)
        elif not configuration.get("DisableScaleIn") and all(
                v is not None and v < target_value * TRACKING_IN_RATIO for v in values):
            latest = values[-1]
            self._apply(policy, lambda capacity: min(capacity, tracked_capacity(capacity, latest, target_value)),
                        configuration.get("ScaleInCooldown", 300),
                        f"target tracking {policy['PolicyName']}: {latest:g} below {target_value:g}", now)

    def _apply(self, policy: dict[str, Any], wanted: Callable[[int], int], cooldown: int, why: str,
               now: float) -> None:
        target = self.targets.get(policy["ResourceId"])
        if target is None:
            return
        cluster, service = target.cluster_and_service
        ecs = self.client("ecs")
        (described,) = ecs.describe_services(cluster=cluster, services=[service])["services"] or [{}]
        if described.get("status") != "ACTIVE":
            return
        capacity = described["desiredCount"]
        new = scaled(target, capacity, wanted(capacity), cooldown, now)
        if new is None:
            return
        ecs.update_service(cluster=cluster, service=service, desiredCount=new)
        line = f"{target.resource_id}: desired count {capacity} -> {new} ({why})"
        self.activities.append(line)
        self.say(f"application auto scaling: {line}")
