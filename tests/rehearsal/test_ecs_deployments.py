"""The emulated ECS deploys as the ECS Developer Guide says a rolling deployment does: room by maximumPercent, old
tasks kept while the healthy ones would fall under minimumHealthyPercent, completion only on healthy tasks of the new
task definition, the circuit breaker's documented threshold, rollback to the last completed task definition, and
deployment alarms."""

from __future__ import annotations

import pytest

from tests.rehearsal.ecs_deployments import BREAKER_REASON, ServiceDeployments, breaker_threshold

OLD, NEW = "arn:aws:ecs:r:1:task-definition/a:1", "arn:aws:ecs:r:1:task-definition/a:2"


def completed(desired: int = 1, **settings) -> ServiceDeployments:
    service = ServiceDeployments(OLD, desired, circuit_breaker=True, rollback=True, **settings)
    service.observe({OLD: [(f"old-{i}", True) for i in range(desired)]})
    assert service.primary.rollout_state == "COMPLETED"
    return service


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (2, 3), (6, 3), (7, 4), (10, 5), (100, 50),
                                                    (1000, 200)])
def test_the_circuit_breaker_threshold_is_half_the_desired_count_clamped_to_3_200(desired, threshold):
    assert breaker_threshold(desired) == threshold


def test_a_new_task_definition_starts_a_primary_deployment_and_keeps_the_old_one_active():
    service = completed()
    service.update(NEW, 1)
    assert [(d["taskDefinition"], d["status"], d["rolloutState"]) for d in service.shape()] == [
        (NEW, "PRIMARY", "IN_PROGRESS"), (OLD, "ACTIVE", "COMPLETED")]


def test_maximum_percent_bounds_what_starts_and_minimum_healthy_percent_what_stops():
    service = completed(desired=2, minimum_healthy_percent=100, maximum_percent=150)
    service.update(NEW, 2)
    old = [("old-0", True), ("old-1", True)]
    assert service.plan({OLD: old}).start == 1  # 150% of 2 is 3 tasks at once
    # The new task is not healthy yet: no old task may stop (2 healthy must stay).
    plan = service.plan({OLD: old, NEW: [("new-0", False)]})
    assert plan.start == 0 and plan.stop == []
    # Healthy: one old task may go, which makes room for the second new one.
    assert service.plan({OLD: old, NEW: [("new-0", True)]}).stop == ["old-0"]
    assert service.plan({OLD: old[1:], NEW: [("new-0", True)]}).start == 1
    half = completed(desired=2, minimum_healthy_percent=50, maximum_percent=100)
    half.update(NEW, 2)
    assert half.plan({OLD: old}).stop == ["old-0"]  # 50% may go at once, before anything new runs


def test_a_deployment_completes_only_when_its_tasks_are_healthy_and_the_old_ones_are_gone():
    service = completed()
    service.update(NEW, 1)
    service.observe({OLD: [("old-0", True)], NEW: [("new-0", False)]})
    assert service.primary.rollout_state == "IN_PROGRESS"
    service.observe({OLD: [("old-0", True)], NEW: [("new-0", True)]})
    assert service.primary.rollout_state == "IN_PROGRESS"  # an old task still runs
    service.observe({NEW: [("new-0", True)]})
    assert [(d["taskDefinition"], d["rolloutState"]) for d in service.shape()] == [(NEW, "COMPLETED")]
    assert service.completed_task_definition == NEW


def test_failed_tasks_trip_the_breaker_at_its_threshold_and_roll_back_to_the_last_completed_definition():
    service = completed()
    service.update(NEW, 1)
    for _ in range(breaker_threshold(1) - 1):
        service.task_failed(NEW, "failed ELB health checks")
    assert service.primary.task_definition == NEW and service.primary.rollout_state == "IN_PROGRESS"
    service.task_failed(NEW, "failed ELB health checks")
    shape = service.shape()
    assert (shape[0]["taskDefinition"], shape[0]["status"], shape[0]["rolloutState"]) == (OLD, "PRIMARY",
                                                                                          "IN_PROGRESS")
    assert (shape[1]["taskDefinition"], shape[1]["rolloutState"], shape[1]["rolloutStateReason"]) == (
        NEW, "FAILED", BREAKER_REASON)
    assert service.task_definition == OLD  # the service itself goes back
    assert service.plan({OLD: [("old-0", True)], NEW: [("new-1", False)]}).stop == ["new-1"]
    service.observe({OLD: [("old-0", True)]})
    assert [(d["taskDefinition"], d["rolloutState"]) for d in service.shape()] == [(OLD, "COMPLETED")]


def test_without_rollback_a_tripped_first_deployment_stops_starting_tasks():
    service = ServiceDeployments(NEW, 1, circuit_breaker=True, rollback=True)
    for _ in range(3):
        service.task_failed(NEW, "CannotPullContainerError")
    assert service.primary.rollout_state == "FAILED" and service.plan({}).start == 0


def test_without_a_circuit_breaker_failures_never_fail_the_deployment():
    service = ServiceDeployments(OLD, 1)
    for _ in range(10):
        service.task_failed(OLD, "exited")
    assert service.primary.rollout_state == "IN_PROGRESS" and service.plan({}).start == 1


def test_a_deployment_alarm_in_alarm_fails_it_and_rolls_back():
    service = completed()
    service.update(NEW, 1)
    service.alarm(["a-5xx"])
    assert service.primary.task_definition == OLD
    assert "a-5xx" in service.shape()[1]["rolloutStateReason"]


def test_the_emulated_account_shows_the_service_s_settings_and_the_deployments_the_agent_reports(emulator):
    """CreateService keeps what ECS keeps (deploymentConfiguration, the grace period: a shim, moto drops them), and
    DescribeServices shows the deployments, counts and task definition the agent reports, as the deploy step and
    Terraform's wait read them."""
    import json
    import urllib.request

    import boto3

    url, _ = emulator
    ecs = boto3.client("ecs", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="x")
    ecs.create_cluster(clusterName="c")
    first = ecs.register_task_definition(family="f", containerDefinitions=[
        {"name": "x", "image": "i", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    configuration = {"minimumHealthyPercent": 100, "maximumPercent": 200,
                     "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    ecs.create_service(cluster="c", serviceName="s", taskDefinition=first, desiredCount=1,
                       deploymentConfiguration=configuration, healthCheckGracePeriodSeconds=60)
    described = ecs.describe_services(cluster="c", services=["s"])["services"][0]
    assert described["deploymentConfiguration"] == configuration
    assert described["healthCheckGracePeriodSeconds"] == 60
    service = ServiceDeployments(first, 1, circuit_breaker=True, rollback=True)
    service.observe({first: [("t-1", True)]})
    report = {"cluster": "c", "service": "s", "running": 1, "pending": 0, "deployments": service.shape(),
              "taskDefinition": first}
    urllib.request.urlopen(urllib.request.Request(f"{url}/_rehearsal/ecs-service", data=json.dumps(report).encode(),
                                                  method="POST"), timeout=10).read()
    (deployment,) = ecs.describe_services(cluster="c", services=["s"])["services"][0]["deployments"]
    assert (deployment["taskDefinition"], deployment["rolloutState"], deployment["runningCount"]) == (
        first, "COMPLETED", 1)
    second = ecs.register_task_definition(family="f", containerDefinitions=[
        {"name": "x", "image": "j", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="c", service="s", taskDefinition=second)
    deployments = ecs.describe_services(cluster="c", services=["s"])["services"][0]["deployments"]
    assert [(d["taskDefinition"], d["status"], d["rolloutState"]) for d in deployments] == [
        (second, "PRIMARY", "IN_PROGRESS"), (first, "ACTIVE", "COMPLETED")]  # at once, as ECS answers UpdateService


def test_the_agent_s_target_health_follows_the_interval_and_both_thresholds():
    """Healthy after HealthyThresholdCount passes in a row, one check per interval; unhealthy after
    UnhealthyThresholdCount failures in a row; until then the target keeps its state (initial: undecided)."""
    import http.server
    import threading
    from types import SimpleNamespace

    from tests.rehearsal.ecs_agent import EcsAgent, ServiceState, TargetHealthCheck

    answers = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(answers["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        agent = EcsAgent.__new__(EcsAgent)
        agent._reachable_from_balancer = lambda state, task: True
        state = ServiceState("c", "s", container_port=server.server_address[1], health_path="/ready",
                             check=TargetHealthCheck(interval_seconds=15, healthy_threshold=2, unhealthy_threshold=3))
        task = SimpleNamespace(address="127.0.0.1", extra={})
        assert agent._target_health(state, task, now=0) is None  # one pass: still initial
        assert agent._target_health(state, task, now=5) is None  # within the interval: not checked again
        assert agent._target_health(state, task, now=15) is True  # the second pass, one interval later
        answers["status"] = 503
        assert agent._target_health(state, task, now=30) is True
        assert agent._target_health(state, task, now=45) is True
        assert agent._target_health(state, task, now=60) is False  # the third failure in a row
        answers["status"] = 200
        assert agent._target_health(state, task, now=75) is False
        assert agent._target_health(state, task, now=90) is True
    finally:
        server.shutdown()


def test_a_task_a_client_runs_stays_running_until_the_agent_reports_it_stopped(emulator):
    """ECS: a task runs until its essential container exits, then shows STOPPED with the container's exit code, and
    its network interface is deleted. moto would move it to STOPPED by itself after four DescribeTasks calls and
    crash on a Fargate task definition sized by the task alone (two shims)."""
    import json
    import urllib.request

    import boto3

    url, _ = emulator
    session = {"region_name": "eu-west-1", "endpoint_url": url, "aws_access_key_id": "testing",
               "aws_secret_access_key": "x"}
    ec2, ecs = boto3.client("ec2", **session), boto3.client("ecs", **session)
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="probe", Description="p", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="runs")
    ecs.register_task_definition(family="probe", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                 cpu="256", memory="512", containerDefinitions=[{"name": "probe", "image": "i"}])
    (task,) = ecs.run_task(cluster="runs", taskDefinition="probe", launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})["tasks"]
    arn = task["taskArn"]
    for _ in range(6):
        (described,) = ecs.describe_tasks(cluster="runs", tasks=[arn])["tasks"]
        assert described["lastStatus"] == "RUNNING"
    (interface,) = [d["value"] for d in described["attachments"][0]["details"] if d["name"] == "networkInterfaceId"]
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[interface])["NetworkInterfaces"][0]["Groups"][0][
        "GroupId"] == group
    report = {"taskArn": arn, "lastStatus": "STOPPED", "exitCode": 3,
              "stoppedReason": "Essential container in task exited"}
    urllib.request.urlopen(urllib.request.Request(f"{url}/_rehearsal/ecs-task", data=json.dumps(report).encode(),
                                                  method="POST"), timeout=10).read()
    (described,) = ecs.describe_tasks(cluster="runs", tasks=[arn])["tasks"]
    assert (described["lastStatus"], described["desiredStatus"], described["containers"][0]["exitCode"],
            described["stoppedReason"]) == ("STOPPED", "STOPPED", 3, "Essential container in task exited")
    assert not [i for i in ec2.describe_network_interfaces()["NetworkInterfaces"] if i["NetworkInterfaceId"] ==
                interface]
    ec2.delete_security_group(GroupId=group)  # nothing holds it any more


def test_a_deleted_service_drains_until_the_agent_reports_its_tasks_stopping(emulator):
    """ECS (DeleteService): DRAINING while tasks run, INACTIVE once they are all stopping; Terraform deletes the
    roles' policies only after INACTIVE. moto makes it INACTIVE at once (a shim)."""
    import json
    import urllib.request

    import boto3

    url, _ = emulator
    ecs = boto3.client("ecs", region_name="eu-west-1", endpoint_url=url, aws_access_key_id="testing",
                       aws_secret_access_key="x")
    ecs.create_cluster(clusterName="drains")
    definition = ecs.register_task_definition(family="d", containerDefinitions=[
        {"name": "x", "image": "i", "memory": 128}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="drains", serviceName="s", taskDefinition=definition, desiredCount=1)
    ecs.delete_service(cluster="drains", service="s", force=True)
    assert ecs.describe_services(cluster="drains", services=["s"])["services"][0]["status"] == "DRAINING"
    report = {"cluster": "drains", "service": "s", "status": "INACTIVE"}
    urllib.request.urlopen(urllib.request.Request(f"{url}/_rehearsal/ecs-service", data=json.dumps(report).encode(),
                                                  method="POST"), timeout=10).read()
    assert ecs.describe_services(cluster="drains", services=["s"])["services"][0]["status"] == "INACTIVE"
