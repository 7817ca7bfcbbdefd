"""The emulated account authorizes every call as AWS would: a real emulator process, real boto3 clients, roles made
by the administrator and assumed by the services that run them."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.rehearsal.authorization import ADMINISTRATOR_KEY

ACCOUNT = "123456789012"
REGION = "eu-west-1"
NOTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}
TRUST_ECS_TASKS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def client(url: str, service: str, credentials: dict[str, str] | None = None):
    keys = credentials or {"AccessKeyId": ADMINISTRATOR_KEY, "SecretAccessKey": "x"}
    return boto3.session.Session().client(
        service, region_name=REGION, endpoint_url=url, aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"], aws_session_token=keys.get("SessionToken"))


def post(url: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the emulator on 127.0.0.1
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def make_role(url: str, name: str, policy: dict, boundary: str | None = None, trust: dict = TRUST_ECS_TASKS) -> str:
    iam = client(url, "iam")
    arguments = {"PermissionsBoundary": boundary} if boundary else {}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **arguments)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="policy", PolicyDocument=json.dumps(policy))
    return arn


def test_a_task_role_reads_exactly_what_its_policy_allows(emulator):
    url, log = emulator
    client(url, "s3").create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
    client(url, "s3").put_object(Bucket="models", Key="a/1/model.onnx", Body=b"x")
    client(url, "s3").put_object(Bucket="models", Key="b/1/model.onnx", Body=b"y")
    arn = make_role(url, "sync-a", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::models/a/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::models",
         "Condition": {"StringLike": {"s3:prefix": ["a/*"]}}}]})
    status, credentials = post(url, "/_rehearsal/assume", {"role_arn": arn, "service": "ecs-tasks.amazonaws.com"})
    assert status == 200, credentials
    s3 = client(url, "s3", credentials)
    assert s3.get_object(Bucket="models", Key="a/1/model.onnx")["Body"].read() == b"x"
    assert s3.list_objects_v2(Bucket="models", Prefix="a/")["KeyCount"] == 1
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket="models", Key="b/1/model.onnx")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:GetObject on resource: arn:aws:s3:::models/b/1/model.onnx" in str(denied.value)
    with pytest.raises(ClientError):
        s3.list_objects_v2(Bucket="models")  # no prefix: the condition's key is missing
    with pytest.raises(ClientError):
        s3.put_object(Bucket="models", Key="a/2/model.onnx", Body=b"z")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    mine = [r for r in records if r["principal"] == "sync-a"]
    assert [(r["action"], r["allowed"]) for r in mine] == [
        ("s3:GetObject", True), ("s3:ListBucket", True), ("s3:GetObject", False), ("s3:ListBucket", False),
        ("s3:PutObject", False)]


def test_a_role_puts_metrics_in_its_own_namespace_only(emulator):
    """CloudWatch's `cloudwatch:namespace` condition key, as the model monitor's role is written."""
    url, log = emulator
    arn = make_role(url, "monitor-a", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "EcsMlops/Monitor"}}}]})
    status, credentials = post(url, "/_rehearsal/assume", {"role_arn": arn, "service": "ecs-tasks.amazonaws.com"})
    assert status == 200, credentials
    cloudwatch = client(url, "cloudwatch", credentials)
    cloudwatch.put_metric_data(Namespace="EcsMlops/Monitor", MetricData=[{"MetricName": "NoData", "Value": 1.0}])
    with pytest.raises(ClientError) as denied:
        cloudwatch.put_metric_data(Namespace="AWS/ECS", MetricData=[{"MetricName": "CPUUtilization", "Value": 1.0}])
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    metrics = client(url, "cloudwatch").list_metrics(Namespace="EcsMlops/Monitor")["Metrics"]
    assert [metric["MetricName"] for metric in metrics] == ["NoData"]
    mine = [json.loads(line) for line in log.read_text().splitlines() if '"monitor-a"' in line]
    assert [(r["action"], r["allowed"]) for r in mine] == [("cloudwatch:PutMetricData", True),
                                                          ("cloudwatch:PutMetricData", False)]


def test_a_service_assumes_only_a_role_that_trusts_it(emulator):
    url, _ = emulator
    arn = make_role(url, "for-tasks-only", NOTHING)
    status, answer = post(url, "/_rehearsal/assume", {"role_arn": arn, "service": "codebuild.amazonaws.com"})
    assert status == 403 and "codebuild.amazonaws.com" in answer["denied"] and "trust policy" in answer["denied"]


def test_the_boundary_caps_what_the_identity_policy_grants_and_kms_needs_its_key_policy(emulator):
    url, _ = emulator
    iam = client(url, "iam")
    boundary = iam.create_policy(PolicyName="only-s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))[
        "Policy"]["Arn"]
    arn = make_role(url, "capped", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "sns:ListTopics"], "Resource": "*"}]}, boundary)
    _, credentials = post(url, "/_rehearsal/assume", {"role_arn": arn, "service": "ecs-tasks.amazonaws.com"})
    client(url, "s3", credentials).list_buckets()
    with pytest.raises(ClientError) as denied:
        client(url, "sns", credentials).list_topics()
    assert "permissions boundary" in str(denied.value)


def test_a_role_passed_to_a_service_needs_pass_role_for_that_service(emulator):
    url, _ = emulator
    task_role = make_role(url, "the-task", NOTHING)
    deployer = make_role(url, "deployer", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:RegisterTaskDefinition", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": task_role,
         "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}]},
        trust={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                       "Principal": {"Service": "codebuild.amazonaws.com"}}]})
    _, credentials = post(url, "/_rehearsal/assume", {"role_arn": deployer, "service": "codebuild.amazonaws.com"})
    ecs = client(url, "ecs", credentials)
    container = [{"name": "c", "image": "i", "memory": 512}]
    ecs.register_task_definition(family="ok", taskRoleArn=task_role, containerDefinitions=container)
    with pytest.raises(ClientError) as denied:
        ecs.register_task_definition(family="no", taskRoleArn=deployer, containerDefinitions=container)
    assert "iam:PassRole" in str(denied.value) and deployer in str(denied.value)


def test_an_unknown_key_is_refused_and_the_report_counts_per_principal(emulator):
    url, _ = emulator
    with pytest.raises(ClientError) as refused:
        client(url, "sqs", {"AccessKeyId": "ASIANOBODY", "SecretAccessKey": "x"}).list_queues()
    assert "security token" in str(refused.value)
    report = json.loads(urllib.request.urlopen(f"{url}/_rehearsal/authorization", timeout=5).read())  # noqa: S310
    assert report["principals"]["sync-a"] == {"checked": 5, "denied": 3}
    assert any("sync-a: s3:PutObject" in line for line in report["denied"])


def test_a_long_poll_neither_holds_up_other_calls_nor_misses_a_message(emulator):
    """SQS answers a long poll as soon as a message arrives; meanwhile the account serves everyone else (moto waits
    inside the call, which under the emulator's one lock would stop the account for the whole wait)."""
    import threading
    import time

    url, _ = emulator
    sqs = client(url, "sqs")
    queue = sqs.create_queue(QueueName="long-poll", Attributes={"ReceiveMessageWaitTimeSeconds": "10"})["QueueUrl"]
    received: list[tuple[float, list]] = []
    started = time.monotonic()

    def poll(**wait) -> None:
        answer = client(url, "sqs").receive_message(QueueUrl=queue, **wait)
        received.append((time.monotonic() - started, answer.get("Messages", [])))

    pollers = [threading.Thread(target=poll, kwargs={"WaitTimeSeconds": 10}), threading.Thread(target=poll)]
    for thread in pollers:
        thread.start()
    time.sleep(1)
    before = time.monotonic()
    client(url, "s3").list_buckets()
    assert time.monotonic() - before < 1.5  # not held up by the two polls
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    for thread in pollers:
        thread.join(timeout=15)
    assert len(received) == 2
    # One poll gets the message within about a second of its sending; the other waits out its 10 s (the queue's
    # attribute applies when the call names no wait) and gets nothing.
    (got,) = [(at, messages) for at, messages in received if messages]
    assert got[0] < 3 and got[1][0]["Body"] == "hello"
    (empty,) = [at for at, messages in received if not messages]
    assert 9.5 < empty < 12
