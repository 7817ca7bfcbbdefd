"""The rehearsal's own parts, fast: the stack adaptation for the mirror's provider, the load balancer's rule
matching, and the shims' claim that each moto gap is still there (the rehearsal itself runs in `make rehearse`)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tests.rehearsal import moto_shims
from tests.rehearsal.__main__ import dropped_kinds
from tests.rehearsal.load_balancer import _matches
from tests.rehearsal.terraform import REVIEWED_DROPS, adapt, unreviewed
from tests.support.paths import PROJECT_ROOT

SCHEMA = {
    "resource_schemas": {"aws_scheduler_schedule": {
        "attributes": {"name": {}, "schedule_expression": {}},
        "block_types": {"target": {"block": {"attributes": {"arn": {}}, "block_types": {}}}}}},
    "data_source_schemas": {},
}
STACK = {
    "terraform": {"required_providers": {"aws": {"source": "aws", "version": "6.25.0"}},
                  "backend": {"s3": {"bucket": "state", "key": "x/terraform.tfstate"}}},
    "provider": {"aws": [{"region": "eu-west-1"}]},
    "data": {"terraform_remote_state": {"platform": {"backend": "s3", "config": {"bucket": "state"}}}},
    "resource": {"aws_scheduler_schedule": {"first": {
        "name": "n", "schedule_expression": "at(...)", "action_after_completion": "NONE",
        "target": {"arn": "a", "retry_policy": {}}, "depends_on": ["x"], "lifecycle": {"ignore_changes": []}}}},
}


def test_adapt_pins_the_mirror_provider_points_everything_at_the_emulated_account_and_lists_what_it_drops():
    document = copy.deepcopy(STACK)
    dropped = adapt(document, "http://127.0.0.1:5000", "5.100.0", SCHEMA)
    assert dropped == ["aws_scheduler_schedule.first.action_after_completion",
                       "aws_scheduler_schedule.first.target.retry_policy"]
    assert document["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"
    (provider,) = document["provider"]["aws"]
    assert provider["endpoints"][0]["ecs"] == "http://127.0.0.1:5000" and provider["s3_use_path_style"] is True
    assert provider["skip_requesting_account_id"] is False  # else security group references plan a false diff
    for backend in (document["terraform"]["backend"]["s3"],
                    document["data"]["terraform_remote_state"]["platform"]["config"]):
        assert backend["endpoints"]["s3"] == "http://127.0.0.1:5000" and backend["use_path_style"] is True
    body = document["resource"]["aws_scheduler_schedule"]["first"]
    assert body["depends_on"] == ["x"] and "lifecycle" in body  # meta-arguments are never dropped
    assert adapt(document, "http://127.0.0.1:5000", "5.100.0", SCHEMA) == []  # idempotent
    assert dropped_kinds([f"stack: {line}" for line in dropped]) == [
        "aws_scheduler_schedule.action_after_completion", "aws_scheduler_schedule.target.retry_policy"]
    # Only the reviewed drops pass: an attribute nobody reviewed stops the wrapper.
    assert unreviewed(dropped) == ["aws_scheduler_schedule.first.target.retry_policy"]


def test_the_reviewed_drops_are_the_three_provider_6_attributes_each_with_what_it_costs():
    assert sorted(REVIEWED_DROPS) == ["aws_ecs_service.deployment_configuration",
                                      "aws_ecs_service.load_balancer.advanced_configuration",
                                      "aws_scheduler_schedule.action_after_completion"]
    assert all(len(cost) > 40 for cost in REVIEWED_DROPS.values())


def test_the_terraform_wrapper_refuses_an_unreviewed_drop(tmp_path, monkeypatch, capsys):
    from tests.rehearsal import terraform

    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "cdk.tf.json").write_text(json.dumps(STACK))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    for name, value in ((terraform.ENDPOINT_VARIABLE, "http://127.0.0.1:5000"), (terraform.SCHEMA_VARIABLE,
                        str(schema)), (terraform.VERSION_VARIABLE, "5.100.0"), (terraform.REAL_TERRAFORM_VARIABLE,
                        "/bin/false")):
        monkeypatch.setenv(name, value)
    assert terraform.main([f"-chdir={folder}", "plan"]) == 1
    assert "aws_scheduler_schedule.first.target.retry_policy" in capsys.readouterr().err
    assert json.loads((folder / "cdk.tf.json").read_text()) == STACK  # nothing written


def test_listener_rules_match_like_the_load_balancer():
    path_rule = {"Conditions": [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*"]}}]}
    assert _matches(path_rule, "lb.example", "/a/v2/health/ready")
    assert not _matches(path_rule, "lb.example", "/b/v2/health/ready")
    host_rule = {"Conditions": [{"Field": "host-header", "Values": ["a.ml.example"]}]}
    assert _matches(host_rule, "A.ml.example", "/anything") and not _matches(host_rule, "b.ml.example", "/")


@pytest.fixture(scope="module")
def gaps_in_a_fresh_moto() -> dict[str, bool]:
    """Each shim's gap, measured in a fresh interpreter: tests with moto in process apply a few shims to theirs."""
    program = ("import json; from tests.rehearsal import moto_shims; "
               "print(json.dumps({shim.name: shim.still_needed() for shim in moto_shims.SHIMS}))")
    return json.loads(subprocess.run([sys.executable, "-c", program], cwd=PROJECT_ROOT, capture_output=True,
                                     text=True, check=True).stdout)


@pytest.mark.parametrize("shim", moto_shims.SHIMS, ids=lambda shim: shim.name)
def test_each_moto_gap_a_shim_covers_is_still_there(shim, gaps_in_a_fresh_moto):
    """When moto closes a gap, this fails: remove that shim (the rehearsal refuses to start with it)."""
    assert gaps_in_a_fresh_moto[shim.name], f"moto closed the gap of {shim.name}: {shim.reason}"


def test_make_install_in_the_repository_copy_finds_everything_installed(tmp_path):
    """A buildspec's install phase runs `make install` in the rehearsal's copy, whose environments are links to the
    checkout's: it must find them up to date (not reinstall through the links, which once emptied the checkout's
    node_modules)."""
    import subprocess

    from tests.support.repository_copy import copy_repository

    copy_repository(tmp_path / "repo")
    question = subprocess.run(["make", "-q", "install"], cwd=tmp_path / "repo", capture_output=True, text=True,
                              check=False)
    assert question.returncode == 0, question.stdout + question.stderr


def test_a_weighted_forward_splits_requests_by_the_target_groups_weights():
    from tests.rehearsal.load_balancer import LoadBalancers

    balancers = LoadBalancers.__new__(LoadBalancers)
    balancers.__init__(lambda: None, lambda arn: ["t"], lambda balancer, port: None)
    picks = [balancers.pick_group("rule", [("blue", 90), ("green", 10)]) for _ in range(1000)]
    assert picks.count("green") == 100 and picks.count("blue") == 900
    assert balancers.pick_group("rule", []) is None
    canary = [balancers.pick_group("canary", [("old", 95), ("new", 5)]) for _ in range(20)]
    assert canary.count("new") == 1
    balancers.server.server_close()


def test_the_autoscaling_shim_keeps_target_tracking_alarms_with_their_policy():
    """Held to AWS: updating a target-tracking policy leaves one set of alarms, and deregistering its scalable
    target deletes the policy and its alarms (DeregisterScalableTarget)."""
    import boto3
    from moto import mock_aws
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    saved = {name: ApplicationAutoscalingBackend.__dict__[name]
             for name in ("put_scaling_policy", "deregister_scalable_target")}
    shim = next(shim for shim in moto_shims.SHIMS if shim.name == "application-autoscaling-policy-alarms")
    shim.apply()
    try:
        with mock_aws():
            ecs = boto3.client("ecs", region_name="eu-west-1")
            ecs.create_cluster(clusterName="c")
            ecs.register_task_definition(family="t", containerDefinitions=[{"name": "x", "image": "i", "memory": 512}])
            ecs.create_service(cluster="c", serviceName="s", taskDefinition="t", desiredCount=1)
            scaling = boto3.client("application-autoscaling", region_name="eu-west-1")
            cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
            target = {"ServiceNamespace": "ecs", "ResourceId": "service/c/s",
                      "ScalableDimension": "ecs:service:DesiredCount"}
            scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)
            for value in (50.0, 60.0):
                scaling.put_scaling_policy(**target, PolicyName="cpu", PolicyType="TargetTrackingScaling",
                                           TargetTrackingScalingPolicyConfiguration={
                                               "TargetValue": value, "PredefinedMetricSpecification": {
                                                   "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
            assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 2  # AlarmHigh and AlarmLow, once
            scaling.deregister_scalable_target(**target)
            assert scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"] == []
            assert cloudwatch.describe_alarms()["MetricAlarms"] == []
    finally:
        for name, method in saved.items():
            setattr(ApplicationAutoscalingBackend, name, method)


def test_a_lock_write_repeated_after_a_lost_answer_is_answered_as_written_and_only_that(monkeypatch):
    """Terraform's state lock PutItem, repeated by its SDK after the emulator's answer was lost: the same item already
    stored is a success; a lock another process holds still fails (moto answers that one, as AWS would)."""
    import io

    import boto3
    from moto import mock_aws

    from tests.rehearsal.emulated_aws import _repeated_lock_write

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(TableName="locks", KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
        held = {"LockID": {"S": "state/x/terraform.tfstate"}, "Info": {"S": '{"ID":"1"}'}}
        dynamodb.put_item(TableName="locks", Item=held)

        def request(item: dict) -> dict:
            body = json.dumps({"TableName": "locks", "Item": item,
                               "ConditionExpression": "attribute_not_exists(LockID)"}).encode()
            return {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem", "CONTENT_LENGTH": str(len(body)),
                    "wsgi.input": io.BytesIO(body),
                    "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=K/20261205/eu-west-1/dynamodb/aws4_request"}

        repeated = request(held)
        assert _repeated_lock_write(repeated) and repeated["wsgi.input"].read().startswith(b'{"TableName"')
        assert not _repeated_lock_write(request({**held, "Info": {"S": '{"ID":"2"}'}}))
        assert not _repeated_lock_write(request({**held, "LockID": {"S": "state/y/terraform.tfstate"}}))


def test_a_client_in_a_vpc_names_itself_to_the_load_balancers_stand_in_and_an_internet_client_does_not():
    """The probe task calls through the stand-in with its task id as the proxy's user, so the connection is decided
    from its own network interface; a call without proxy credentials comes from the internet."""
    import urllib.error
    import urllib.request

    from tests.rehearsal.load_balancer import LoadBalancers, proxy_for
    from tests.rehearsal.network import FlowRefused

    class Elbv2:
        def describe_load_balancers(self):
            return {"LoadBalancers": [{"DNSName": "internal-lb.example", "LoadBalancerArn": "arn:lb"}]}

    seen = []

    def client_flow(balancer, port, client):
        seen.append(client)
        raise FlowRefused(f"{client or 'an internet client'} -> {balancer['DNSName']}:{port}: refused")

    balancers = LoadBalancers(Elbv2, lambda group: [], client_flow)
    balancers.start()
    try:
        for proxy, expected in ((balancers.url, None), (proxy_for(balancers.url, "task-0f1e"), "task-0f1e")):
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open("http://internal-lb.example/a/v2/health/ready", timeout=5)
            assert refused.value.code == 504 and seen[-1] == expected
            assert f"{expected or 'an internet client'} -> internal-lb.example:80: refused" in refused.value.read(
                ).decode()
    finally:
        balancers.stop()


def test_the_interface_name_shim_gives_every_interface_a_name_and_keeps_moto_s_own(monkeypatch):
    """EC2 names every interface's private address; moto only in a VPC with DNS hostnames, where it sets the name
    itself (a NAT gateway's interface): the shim must take that assignment, not refuse it."""
    import boto3
    from moto import mock_aws

    moto_shims.apply("ecs-run-task-interface-name")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        for hostnames in (True, False):
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": hostnames})
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
            address = ec2.allocate_address(Domain="vpc")["AllocationId"]
            assert ec2.create_nat_gateway(SubnetId=subnet, AllocationId=address)["NatGateway"]["NatGatewayId"]
            interface = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]
            assert interface["PrivateDnsName"].startswith("ip-10-0-1-")


@pytest.mark.parametrize("params", [
    {"cluster": "mlops-prod", "tasks": ["arn:aws:ecs:eu-west-1:123456789012:task/mlops-prod/0f1e"]},
    {"cluster": "mlops-prod", "tasks": ["0f1e"]},
    {"cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/mlops-prod", "task": "0f1e"},
])
def test_describing_or_stopping_a_task_is_authorized_on_the_task(params):
    """ECS authorizes DescribeTasks and StopTask on the task's ARN (`task/<cluster>/<id>`), not on `*`: a role
    scoped to its cluster's tasks may watch its probe, and no other."""
    from types import SimpleNamespace

    from tests.rehearsal.iam_requests import Call, _resource

    account = SimpleNamespace(account="123456789012")
    for action in ("DescribeTasks", "StopTask"):
        assert _resource(Call("ecs", "eu-west-1", action, params), account, "ecs", f"ecs:{action}") == (
            "arn:aws:ecs:eu-west-1:123456789012:task/mlops-prod/0f1e")
