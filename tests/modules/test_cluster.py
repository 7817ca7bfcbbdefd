"""modules/cluster.py: an ECS cluster with Container Insights, encrypted ECS Exec logging, Fargate and Spot."""

from __future__ import annotations

from modules.cluster import Cluster, ClusterProps
from tests.infra.synth import only, ref
from tests.support.construct_synth import arn, synth_stack

KEY = arn("kms", "key/k")


def test_cluster_logs_exec_sessions_encrypted_and_offers_fargate_and_spot():
    stack = synth_stack(lambda s: Cluster(s, "cluster", ClusterProps(name="p-dev", kms_key_arn=KEY)))
    cluster_id, cluster = only(stack, "aws_ecs_cluster")
    log_id, log_group = only(stack, "aws_cloudwatch_log_group")
    assert log_group == {"name": "/ecs/p-dev/exec", "retention_in_days": 365, "kms_key_id": KEY}
    assert cluster["setting"] == [{"name": "containerInsights", "value": "enhanced"}]
    execute = cluster["configuration"]["execute_command_configuration"]
    assert execute["kms_key_id"] == KEY and execute["logging"] == "OVERRIDE"
    assert execute["log_configuration"] == {"cloud_watch_log_group_name": ref("aws_cloudwatch_log_group", log_id,
                                                                              "name"),
                                            "cloud_watch_encryption_enabled": True}
    _, providers = only(stack, "aws_ecs_cluster_capacity_providers")
    assert providers["cluster_name"] == ref("aws_ecs_cluster", cluster_id, "name")
    assert providers["capacity_providers"] == ["FARGATE", "FARGATE_SPOT"]
    assert providers["default_capacity_provider_strategy"] == [{"capacity_provider": "FARGATE", "weight": 1,
                                                                "base": 0}]


def test_exec_log_retention_is_an_option():
    stack = synth_stack(lambda s: Cluster(s, "cluster", ClusterProps(name="c", kms_key_arn=KEY,
                                                                     exec_log_retention_days=30)))
    assert only(stack, "aws_cloudwatch_log_group")[1]["retention_in_days"] == 30
