"""The teardown check reads the emulated account itself: every resource type the stacks create (the shipped and
the all-options configuration) is listed by an API call, or is part of a listed one; and the listers find, and stop
finding, what a moto account holds."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.rehearsal.leftovers import LISTED, PARTS, holdings, unaccounted


@pytest.mark.synth
@pytest.mark.parametrize("synth_name", ["default_synth", "options_synth"])
def test_every_resource_type_the_stacks_create_is_checked_after_teardown(request, synth_name):
    synth = request.getfixturevalue(synth_name)
    types = {kind for stack in synth.stacks.values() for kind in stack.get("resource", {})}
    missing = unaccounted(types)
    assert missing == [], ", ".join(missing)


def test_every_part_belongs_to_a_listed_type():
    assert unaccounted(set(PARTS)) == []


def test_the_listers_find_what_the_account_holds_and_nothing_once_it_is_gone():
    with mock_aws():
        def client(service: str):
            return boto3.client(service, region_name="eu-west-1")

        # moto has no CodeStar Connections: the emulated account's own stand-in lists them (ListConnections).
        kinds = set(LISTED) - {"aws_codestarconnections_connection"}
        empty = holdings(client, kinds)
        assert "aws_vpc" not in empty and "aws_s3_bucket" not in empty
        vpc = client("ec2").create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        client("s3").create_bucket(Bucket="left", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        client("logs").create_log_group(logGroupName="/ecs/left")
        queue = client("sqs").create_queue(QueueName="left")["QueueUrl"]
        client("sqs").create_queue(QueueName="rehearsal-s3-observer")  # the rehearsal's own: not a leftover
        held = holdings(client, kinds)
        assert held["aws_vpc"] == [vpc] and held["aws_s3_bucket"] == ["left"] and held["aws_sqs_queue"] == [queue]
        client("sqs").delete_queue(QueueUrl=queue)
        assert held["aws_cloudwatch_log_group"] == ["/ecs/left"]
        ecs = client("ecs")
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(family="f", containerDefinitions=[{"name": "x", "image": "i", "memory": 128}])
        ecs.create_service(cluster="c", serviceName="s", taskDefinition="f", desiredCount=0)
        assert len(holdings(client, kinds)["aws_ecs_service"]) == 1
        ecs.delete_service(cluster="c", service="s")
        ecs.delete_cluster(cluster="c")
        assert "aws_ecs_service" not in holdings(client, kinds)
        client("ec2").delete_vpc(VpcId=vpc)
        client("s3").delete_bucket(Bucket="left")
        after = holdings(client, kinds)
        assert "aws_vpc" not in after and "aws_s3_bucket" not in after and "aws_sqs_queue" not in after
        assert set(LISTED) >= {"aws_lb", "aws_ecs_service", "aws_iam_role", "aws_kms_key"}
