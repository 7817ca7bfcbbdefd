"""An asynchronous endpoint in its stack (the all-options fixture's scoring in qa: min_tasks 0): no load balancer
anywhere near it, the worker started with its queue, bucket and topics by reference, its role holding the
endpoint's queue permissions, scaling wired to its own service and queue, alarms on its queues."""

from __future__ import annotations

import json

import pytest

from serving.contract import WORKER_PROGRAM, WorkerVariable
from tests.infra.synth import only, ref, resources, target

STACK = "acme-ml-qa-endpoint-scoring"


@pytest.fixture(scope="module")
def stack(options_synth) -> dict:
    return options_synth.stack(STACK)


def _id_of(stack: dict, resource_type: str, path_part: str) -> str:
    [logical_id] = [logical_id for logical_id in resources(stack, resource_type) if path_part in logical_id]
    return logical_id


def test_nothing_of_a_load_balancer_is_made_for_it(stack):
    for resource_type in ("aws_lb_target_group", "aws_lb_listener_rule", "aws_vpc_security_group_ingress_rule"):
        found = [logical_id for logical_id in resources(stack, resource_type) if "storage_nfs" not in logical_id]
        assert not found, f"{resource_type}: {found}"
    _, service = only(stack, "aws_ecs_service")
    assert "load_balancer" not in service and "health_check_grace_period_seconds" not in service
    assert service["desired_count"] == 0 and service["wait_for_steady_state"]
    assert service["lifecycle"]["ignore_changes"] == ["desired_count"]


def test_the_worker_runs_the_worker_program_with_its_queue_bucket_and_topics(stack):
    _, service = only(stack, "aws_ecs_service")
    _, _, task = target(stack, service["task_definition"])
    (container,) = json.loads(task["container_definitions"])
    assert container["entryPoint"] == list(WORKER_PROGRAM)
    assert container["portMappings"] == [] and "healthCheck" not in container
    assert container["stopTimeout"] == 120 and (task["cpu"], task["memory"]) == ("1024", "4096")
    environment = {entry["name"]: entry["value"] for entry in container["environment"]}
    queue, dead_letters = (_id_of(stack, "aws_sqs_queue", "requests_queue"),
                           _id_of(stack, "aws_sqs_queue", "dead-letter-queue"))
    assert environment[WorkerVariable.QUEUE_URL] == ref("aws_sqs_queue", queue, "url")
    assert environment[WorkerVariable.DEAD_LETTER_QUEUE_URL] == ref("aws_sqs_queue", dead_letters, "url")
    assert environment[WorkerVariable.BUCKET] == ref("aws_s3_bucket", _id_of(stack, "aws_s3_bucket", "async"),
                                                     "bucket")
    assert environment[WorkerVariable.SUCCESS_TOPIC_ARN] == ref("aws_sns_topic", _id_of(stack, "aws_sns_topic",
                                                                                        "success"), "arn")
    assert environment[WorkerVariable.ERROR_TOPIC_ARN] == ref("aws_sns_topic", _id_of(stack, "aws_sns_topic",
                                                                                      "error"), "arn")
    assert (environment[WorkerVariable.INPUT_PREFIX], environment[WorkerVariable.OUTPUT_PREFIX],
            environment[WorkerVariable.FAILURE_PREFIX]) == (
        "async/scoring/input/", "async/scoring/output/", "async/scoring/failure/")
    assert environment[WorkerVariable.MAX_RECEIVES] == "5"  # the queue's redrive count
    queue_body = resources(stack, "aws_sqs_queue")[queue]
    assert json.loads(queue_body["redrive_policy"])["maxReceiveCount"] == 5
    assert environment[WorkerVariable.VISIBILITY_TIMEOUT_SECONDS] == str(queue_body["visibility_timeout_seconds"])
    assert (environment[WorkerVariable.CONCURRENCY], environment[WorkerVariable.MAX_REQUEST_BYTES]) == (
        "2", "524288000")
    assert environment[WorkerVariable.DRAIN_SECONDS] == "115"  # inside the 120-second stop timeout
    assert environment["SERVING_MODEL_NAME"] == "scoring" and environment["SERVING_MODELS_DIR"] == "/mnt/models"


def test_the_task_role_holds_the_endpoint_s_queue_permissions(stack):
    _, service = only(stack, "aws_ecs_service")
    _, _, task = target(stack, service["task_definition"])
    _, role_id, _ = target(stack, task["task_role_arn"])
    [policy] = [body for body in resources(stack, "aws_iam_role_policy").values()
                if body["role"] == ref("aws_iam_role", role_id, "id") and "TakeRequests" in body["policy"]]
    statements = {statement["Sid"]: statement for statement in json.loads(policy["policy"])["Statement"]}
    queue = _id_of(stack, "aws_sqs_queue", "requests_queue")
    assert statements["TakeRequests"]["Resource"] == ref("aws_sqs_queue", queue, "arn")
    assert statements["ReadRequests"]["Resource"].endswith("/async/scoring/input/*")


def test_scaling_follows_its_own_service_and_queue(stack):
    (scalable,) = resources(stack, "aws_appautoscaling_target").values()
    service_id, _ = only(stack, "aws_ecs_service")
    assert scalable["resource_id"].endswith("/" + ref("aws_ecs_service", service_id, "name"))
    assert scalable["min_capacity"] == 0
    queue = _id_of(stack, "aws_sqs_queue", "requests_queue")
    alarms = {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    idle = alarms["acme-ml-qa-scoring-idle"]
    assert idle["evaluation_periods"] == 30
    visible = next(query for query in idle["metric_query"] if query["id"] == "visible")
    assert visible["metric"]["dimensions"] == {"QueueName": ref("aws_sqs_queue", queue, "name")}
    dead = alarms["acme-ml-qa-scoring-dead-letters"]
    dead_letters = _id_of(stack, "aws_sqs_queue", "dead-letter-queue")
    assert dead["dimensions"] == {"QueueName": ref("aws_sqs_queue", dead_letters, "name")} and dead["threshold"] == 1
    assert "acme-ml-qa-scoring-request-age" in alarms
    assert "acme-ml-qa-scoring-running-tasks-low" not in alarms  # zero tasks is the idle state, not a fault


def test_the_stack_says_where_requests_go_and_answers_come_from(stack):
    outputs = stack["output"]
    assert outputs["input"]["value"].endswith("/async/scoring/input/")
    assert outputs["output"]["value"].endswith("/async/scoring/output/")


def test_the_monitor_expects_captures_only_when_the_queue_answered_requests(stack):
    alarms = {body["alarm_name"]: body for body in resources(stack, "aws_cloudwatch_metric_alarm").values()}
    queries = {query["id"]: query for query in alarms["acme-ml-qa-scoring-main-no-data"]["metric_query"]}
    queue = resources(stack, "aws_sqs_queue")[_id_of(stack, "aws_sqs_queue", "requests_queue")]
    assert queries["requests"]["metric"]["namespace"] == "AWS/SQS"
    assert queries["requests"]["metric"]["metric_name"] == "NumberOfMessagesDeleted"
    assert queries["requests"]["metric"]["dimensions"] == {"QueueName": queue["name"]}  # the queue's own name
