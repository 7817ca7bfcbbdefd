"""The smoke probe of an endpoint behind an internal load balancer: a one-off Fargate task that the pipeline's Smoke
step starts inside the VPC (pipeline/smoke_probe.py), running `python -m serving.probe` from the image deployed, to
call the endpoint the way a client in the VPC does.

It has its own execution role (pull the serving image, write its log, read the smoke credentials secret into the
container through ECS `secrets`), no task role (it calls no AWS API), and its own security group: out to the load
balancer on the listener port and HTTPS (image pull, logs, an OAuth token URL), nothing in; the load balancer's group
admits it on the listener port, whatever `internal_ingress_cidrs` says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecs_task_definition import EcsTaskDefinition, EcsTaskDefinitionRuntimePlatform
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.iam import Statement, assume_role_policy, policy_document
from modules.task_identity import ECS_TASKS
from serving.contract import PROBE_CONTAINER, PROBE_PROGRAM, ProbeVariable


@dataclass(frozen=True)
class SmokeProbeProps:
    name: str
    """`<project>-<env>-<endpoint>-smoke-probe`: task family, security group and log stream prefix."""
    log_group_name: str
    execution_role_name: str
    region: str
    account_id: str
    vpc_id: str
    image: str
    """The serving image deployed: the probe's code is the commit under test."""
    repository_arn: str
    kms_key_arn: str
    load_balancer_security_group_id: str
    listener_port: int
    environment: dict[str, str]
    """The probe's variables (serving.contract.ProbeVariable) but its credentials."""
    credentials_secret_arn: str | None = None
    """The smoke credentials secret (an endpoint with `auth`), read into the container as PROBE_CREDENTIALS."""
    log_retention_days: int = 30
    permissions_boundary_arn: str | None = None


class SmokeProbe(Construct):
    """Attributes: `task_definition`, `execution_role`, `security_group_id`, `log_group`."""

    def __init__(self, scope: Construct, construct_id: str, props: SmokeProbeProps):
        super().__init__(scope, construct_id)
        self.log_group = CloudwatchLogGroup(self, "log-group", name=props.log_group_name,
                                            retention_in_days=props.log_retention_days, kms_key_id=props.kms_key_arn)
        self.execution_role = IamRole(self, "execution-role", name=props.execution_role_name,
                                      permissions_boundary=props.permissions_boundary_arn,
                                      assume_role_policy=assume_role_policy(ECS_TASKS, props.account_id),
                                      description="ECS pulls the smoke probe's image, writes its log, reads its "
                                                  "credentials")
        statements: list[Statement] = [
            {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "PullServingImage", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
             "Resource": props.repository_arn},
            {"Sid": "WriteProbeLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{self.log_group.arn}:*"},
            # The image's layers, the log group and the secret are encrypted with the environment's key.
            {"Sid": "DecryptWithEnvironmentKey", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": props.kms_key_arn},
        ]
        if props.credentials_secret_arn is not None:
            statements.append({"Sid": "ReadSmokeCredentials", "Effect": "Allow",
                               "Action": "secretsmanager:GetSecretValue", "Resource": props.credentials_secret_arn})
        policy = IamRolePolicy(self, "execution-policy", role=self.execution_role.id,
                               policy=policy_document(*statements))

        group = SecurityGroup(self, "security-group", name=props.name, vpc_id=props.vpc_id,
                              description=f"{props.name}: the load balancer and HTTPS out, nothing in",
                              tags={"Name": props.name})
        self.security_group_id: str = group.id
        port = props.listener_port
        VpcSecurityGroupEgressRule(self, "to-load-balancer", security_group_id=group.id,
                                   referenced_security_group_id=props.load_balancer_security_group_id,
                                   ip_protocol="tcp", from_port=port, to_port=port,
                                   description="the endpoint, through its load balancer")
        VpcSecurityGroupEgressRule(self, "https-out", security_group_id=group.id, cidr_ipv4="0.0.0.0/0",
                                   ip_protocol="tcp", from_port=443, to_port=443,
                                   description="HTTPS to AWS APIs (image, logs, secret) and a token URL")
        VpcSecurityGroupIngressRule(self, "load-balancer-from-probe",
                                    security_group_id=props.load_balancer_security_group_id,
                                    referenced_security_group_id=group.id, ip_protocol="tcp", from_port=port,
                                    to_port=port, description=f"the smoke probe {props.name}")

        container = {
            "name": PROBE_CONTAINER,
            "image": props.image,
            "entryPoint": list(PROBE_PROGRAM),
            "cpu": 0,
            "essential": True,
            "readonlyRootFilesystem": True,
            "portMappings": [],
            "environment": [{"name": key, "value": value} for key, value in sorted(props.environment.items())],
            "environmentFiles": [],
            "secrets": [{"name": ProbeVariable.CREDENTIALS, "valueFrom": props.credentials_secret_arn}]
            if props.credentials_secret_arn is not None else [],
            "mountPoints": [],
            "volumesFrom": [],
            "systemControls": [],
            "ulimits": [],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": props.log_group_name, "awslogs-region": props.region,
                "awslogs-stream-prefix": props.name}, "secretOptions": []},
        }
        self.task_definition = EcsTaskDefinition(
            self, "task-definition", family=props.name, network_mode="awsvpc", requires_compatibilities=["FARGATE"],
            cpu="256", memory="512", execution_role_arn=self.execution_role.arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"),
            container_definitions=json.dumps([container]), depends_on=[policy])
