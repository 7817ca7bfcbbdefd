"""One ML endpoint as an ECS Fargate service: the model server behind the shared load balancer, or an asynchronous
endpoint's queue worker (the same image and volumes, its own entry point, no port).

Creates the container log group, the roles' permissions, the security group chain (load balancer -> service ->
EFS), the task definition (models read-only, data read-write, both over TLS with IAM authorization) and the service
(circuit breaker with rollback, alarm-based rollback, rolling 100/200) registered in the endpoint's target group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecs_service import (
    EcsService,
    EcsServiceAlarms,
    EcsServiceCapacityProviderStrategy,
    EcsServiceDeploymentCircuitBreaker,
    EcsServiceDeploymentConfiguration,
    EcsServiceDeploymentConfigurationCanaryConfiguration,
    EcsServiceDeploymentConfigurationLinearConfiguration,
    EcsServiceLoadBalancer,
    EcsServiceLoadBalancerAdvancedConfiguration,
    EcsServiceNetworkConfiguration,
    EcsServiceServiceRegistries,
)
from cdktf_cdktf_provider_aws.ecs_task_definition import (
    EcsTaskDefinition,
    EcsTaskDefinitionRuntimePlatform,
    EcsTaskDefinitionVolume,
    EcsTaskDefinitionVolumeEfsVolumeConfiguration,
    EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig,
)
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule
from constructs import Construct

from modules.cluster import FARGATE, FARGATE_SPOT
from modules.endpoint_routing import EndpointRouting
from modules.iam import Statement, policy_document
from modules.model_storage import ModelStorage
from modules.task_identity import TaskIdentity, allow_task_egress
from serving.contract import DATA_MOUNT, LIVENESS_PATH, MODELS_MOUNT, SCRATCH_MOUNT, ServerVariable
from serving.contract import SERVER_CONTAINER as CONTAINER_NAME


@dataclass(frozen=True)
class GradualRollout:
    """An ECS canary or linear deployment (needs routing with traffic shifting)."""

    strategy: str
    """`CANARY` or `LINEAR`."""
    percent: float
    """The canary's share, or the share moved per linear step."""
    step_bake_minutes: int
    """The canary's bake, or the wait between linear steps."""
    bake_minutes: int
    """After the last shift: the old version is kept, and an alarm still rolls back to it."""

    def __post_init__(self) -> None:
        if self.strategy not in ("CANARY", "LINEAR"):
            raise ValueError(f"GradualRollout.strategy {self.strategy!r}: CANARY or LINEAR")
        low = 0.1 if self.strategy == "CANARY" else 3.0
        if not low <= self.percent <= 100:
            raise ValueError(f"GradualRollout.percent {self.percent}: ECS allows {low} to 100 for {self.strategy}")
        for name in ("step_bake_minutes", "bake_minutes"):
            if not 0 <= getattr(self, name) <= 1440:
                raise ValueError(f"GradualRollout.{name} {getattr(self, name)}: ECS allows 0 to 1440")


@dataclass(frozen=True)
class EndpointServiceProps:
    name: str
    """Endpoint name, e.g. `a`: the container's model name and the service name."""
    name_prefix: str
    """`<project>-<env>-<endpoint>`: family, log group and security group names."""
    region: str
    subnet_ids: list[str]
    cluster_arn: str
    load_balancer_security_group_id: str
    image: str
    """Repository URL and tag."""
    repository_arn: str
    kms_key_arn: str
    cpu: int
    memory_mib: int
    container_port: int
    health_check_path: str
    desired_count: int
    fargate_spot_percent: int = 0
    deregistration_delay_seconds: int = 30
    health_check_grace_period_seconds: int = 60
    stop_timeout_seconds: int = 30
    enable_execute_command: bool = False
    log_retention_days: int = 30
    rollback_alarm_names: list[str] = field(default_factory=list)
    """Alarms that, firing during a deployment, make ECS roll it back. Pass the alarms' `alarm_name` attributes:
    the reference makes Terraform create the alarms first, as ECS requires."""
    environment: dict[str, str] = field(default_factory=dict)
    """Extra container environment variables (the model server's settings)."""
    start_after: tuple[Any, ...] = ()
    """Resources that must exist before the service starts (e.g. the first model sync's schedule)."""
    gradual_rollout: GradualRollout | None = None
    """When given, new versions go out as ECS canary or linear deployments through the routing's two target
    groups; when omitted, as rolling updates."""
    target_group_key: str | None = None
    """A variant's service: the key of its group in `routing.target_groups`; None: `routing.target_group`."""
    behind_load_balancer: bool = True
    """False for a shadow variant: no target group, no path from the load balancer; reached through
    `service_registry_arn` instead."""
    open_network_path: bool = True
    """Create the security group rules (load balancer -> service, task egress). False for a second service on the
    same task identity (another variant): the first one's rules already allow it, and AWS refuses duplicates."""
    service_registry_arn: str | None = None
    """A Cloud Map service the tasks register in (DNS A records), for callers inside the VPC."""
    api_keys_secret_arn: str | None = None
    """The endpoint's API key set: given to the server through ECS `secrets` (the execution role may read exactly
    this secret) and re-read by the server with the task role. When omitted, the server asks for no key."""
    serves_http: bool = True
    """False for a queue worker: no port, no HTTP health check, no load balancer, no path from it."""
    entry_point: tuple[str, ...] = ()
    """Replaces the image's entry point (the queue worker's program); empty: the image's, the server."""
    task_statements: tuple[Statement, ...] = ()
    """What the task role may do besides using the endpoint's volumes (a queue worker: its queue, bucket, topics)."""

    def __post_init__(self) -> None:
        if not self.serves_http and (self.behind_load_balancer or self.service_registry_arn):
            raise ValueError(f"EndpointServiceProps {self.name}: a service that serves no HTTP is neither behind the "
                             "load balancer nor registered for callers")
        if self.gradual_rollout is not None and not self.behind_load_balancer:
            raise ValueError(f"EndpointServiceProps {self.name}: a gradual rollout needs the load balancer")
        if not 0 <= self.fargate_spot_percent <= 100:
            raise ValueError(f"EndpointServiceProps.fargate_spot_percent {self.fargate_spot_percent}: 0 to 100")
        if self.desired_count < 0:
            raise ValueError(f"EndpointServiceProps.desired_count {self.desired_count}: at least 0")
        if not self.health_check_path.startswith("/"):
            raise ValueError(f"EndpointServiceProps.health_check_path {self.health_check_path!r}: must start with /")


class EndpointService(Construct):
    """Attributes: `service`, `service_name`, `task_definition`, `log_group`, `container_definition` (the dict
    behind the task definition's JSON)."""

    def __init__(self, scope: Construct, construct_id: str, props: EndpointServiceProps, identity: TaskIdentity,
                 storage: ModelStorage, routing: EndpointRouting | None):
        if routing is None and props.behind_load_balancer:
            raise ValueError(f"endpoint service {props.name}: behind the load balancer, it needs the routing")
        super().__init__(scope, construct_id)
        self.log_group = CloudwatchLogGroup(self, "log-group", name=f"/ecs/{props.name_prefix}",
                                            retention_in_days=props.log_retention_days, kms_key_id=props.kms_key_arn)
        role_policies = self._permissions(props, identity, storage)
        if props.open_network_path:
            self._security_group_chain(props, identity, storage)

        self.container_definition = self._container_definition(props)
        self.task_definition = EcsTaskDefinition(
            self, "task-definition", family=props.name_prefix, network_mode="awsvpc",
            requires_compatibilities=["FARGATE"], cpu=str(props.cpu), memory=str(props.memory_mib),
            execution_role_arn=identity.execution_role.arn, task_role_arn=identity.task_role.arn,
            runtime_platform=EcsTaskDefinitionRuntimePlatform(operating_system_family="LINUX",
                                                              cpu_architecture="X86_64"),
            container_definitions=json.dumps([self.container_definition]),
            volume=[
                _efs_volume("models", storage.file_system_id, storage.models_access_point.id),
                _efs_volume("data", storage.file_system_id, storage.data_access_point.id),
                EcsTaskDefinitionVolume(name="scratch"),
            ])

        self.service = EcsService(
            self, "service", name=props.name, cluster=props.cluster_arn,
            task_definition=self.task_definition.arn, desired_count=props.desired_count,
            capacity_provider_strategy=_capacity_strategy(props.fargate_spot_percent),
            network_configuration=EcsServiceNetworkConfiguration(
                subnets=props.subnet_ids, security_groups=[identity.security_group_id], assign_public_ip=False),
            load_balancer=[EcsServiceLoadBalancer(target_group_arn=_target_group(props, routing).arn,
                                                  container_name=CONTAINER_NAME,
                                                  container_port=props.container_port,
                                                  advanced_configuration=_traffic_shifting(props, routing))]
            if props.behind_load_balancer and routing is not None else None,
            service_registries=EcsServiceServiceRegistries(registry_arn=props.service_registry_arn)
            if props.service_registry_arn is not None else None,
            deployment_configuration=_deployment_configuration(props.gradual_rollout),
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            deployment_circuit_breaker=EcsServiceDeploymentCircuitBreaker(enable=True, rollback=True),
            alarms=EcsServiceAlarms(alarm_names=props.rollback_alarm_names, enable=True, rollback=True)
            if props.rollback_alarm_names else None,
            health_check_grace_period_seconds=props.health_check_grace_period_seconds
            if props.behind_load_balancer else None,
            enable_execute_command=props.enable_execute_command,
            propagate_tags="SERVICE", enable_ecs_managed_tags=True,
            # `cdktf deploy` returns only once the new tasks are healthy: a failed deploy fails the pipeline.
            wait_for_steady_state=True,
            # Autoscaling owns the task count after creation: a deploy never resets the scale.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_count"]),
            # A target group can serve a service only once a listener rule attaches it to the load balancer; a task
            # can start only once it may pull, log and mount.
            depends_on=[*([routing.listener_rule] if routing is not None else []), *storage.mountable,
                        *role_policies, *props.start_after,
                        *([routing.traffic_shift_policy] if routing is not None
                          and routing.traffic_shift_policy is not None else [])])
        self.service_name: str = self.service.name

    def _permissions(self, props: EndpointServiceProps, identity: TaskIdentity,
                     storage: ModelStorage) -> tuple[IamRolePolicy, IamRolePolicy]:
        execution_policy = IamRolePolicy(
            self, "execution-policy", role=identity.execution_role.id, policy=policy_document(
            # ECR's token call has no resource scope.
            {"Sid": "EcrToken", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "PullServingImage", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
             "Resource": props.repository_arn},
            {"Sid": "DecryptServingImage", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": props.kms_key_arn},
            {"Sid": "WriteContainerLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{self.log_group.arn}:*"},
            *([{"Sid": "ReadApiKeySet", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                "Resource": props.api_keys_secret_arn}] if props.api_keys_secret_arn else []),
        ))
        statements: list[Statement] = [*storage.reader_writer_statements(), *props.task_statements]
        if props.api_keys_secret_arn:
            # The server re-reads the key set, so a new or revoked key takes effect without a restart.
            statements.append({"Sid": "RefreshApiKeySet", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                               "Resource": props.api_keys_secret_arn})
            statements.append({"Sid": "DecryptApiKeySet", "Effect": "Allow", "Action": "kms:Decrypt",
                               "Resource": props.kms_key_arn, "Condition": {"StringEquals": {
                                   "kms:ViaService": f"secretsmanager.{props.region}.amazonaws.com"}}})
        if props.enable_execute_command:
            # ECS Exec's session channel actions have no resource scope.
            statements.append({"Sid": "EcsExec", "Effect": "Allow", "Action": [
                "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"], "Resource": "*"})
            statements.append({"Sid": "EcsExecEncryption", "Effect": "Allow", "Action": "kms:Decrypt",
                               "Resource": props.kms_key_arn})
        task_policy = IamRolePolicy(self, "task-policy", role=identity.task_role.id,
                                    policy=policy_document(*statements))
        return execution_policy, task_policy

    def _security_group_chain(self, props: EndpointServiceProps, identity: TaskIdentity,
                              storage: ModelStorage) -> None:
        port = props.container_port
        if not props.serves_http:
            allow_task_egress(self, "service", identity.security_group_id, storage.security_group_id)
            return
        VpcSecurityGroupEgressRule(self, "load-balancer-to-service",
                                   security_group_id=props.load_balancer_security_group_id,
                                   referenced_security_group_id=identity.security_group_id, ip_protocol="tcp",
                                   from_port=port, to_port=port, description=f"to endpoint {props.name}")
        VpcSecurityGroupIngressRule(self, "service-from-load-balancer", security_group_id=identity.security_group_id,
                                    referenced_security_group_id=props.load_balancer_security_group_id,
                                    ip_protocol="tcp", from_port=port, to_port=port,
                                    description="from the load balancer")
        allow_task_egress(self, "service", identity.security_group_id, storage.security_group_id)

    def _container_definition(self, props: EndpointServiceProps) -> dict[str, Any]:
        """Every field ECS fills in when it is left out is written here, so a plan after apply shows no diff."""
        port = props.container_port
        environment = dict(props.environment)
        if props.api_keys_secret_arn:
            environment[ServerVariable.API_KEYS_SECRET] = props.api_keys_secret_arn
        # Liveness, not readiness: a server waiting for its first model is alive and must not be replaced; the
        # load balancer's readiness check keeps traffic away from it meanwhile.
        probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{LIVENESS_PATH}'"
                 ", timeout=4)")
        return {
            "name": CONTAINER_NAME,
            "image": props.image,
            "cpu": 0,
            "essential": True,
            "readonlyRootFilesystem": True,
            **({"entryPoint": list(props.entry_point)} if props.entry_point else {}),
            "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp", "name": "http",
                              "appProtocol": "http"}] if props.serves_http else [],
            "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
            "environmentFiles": [],
            "mountPoints": [
                {"sourceVolume": "models", "containerPath": MODELS_MOUNT, "readOnly": True},
                {"sourceVolume": "data", "containerPath": DATA_MOUNT, "readOnly": False},
                {"sourceVolume": "scratch", "containerPath": SCRATCH_MOUNT, "readOnly": False},
            ],
            "volumesFrom": [],
            "systemControls": [],
            "ulimits": [],
            "stopTimeout": props.stop_timeout_seconds,
            # A queue worker has no HTTP to probe: it exits on a fatal error, and ECS replaces it.
            **({"healthCheck": {"command": ["CMD", "python", "-c", probe], "interval": 15, "timeout": 5,
                                "retries": 3, "startPeriod": 30}} if props.serves_http else {}),
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": self.log_group.name, "awslogs-region": props.region,
                "awslogs-stream-prefix": props.name}, "secretOptions": []},
            **({"secrets": [{"name": ServerVariable.API_KEYS, "valueFrom": props.api_keys_secret_arn}]}
               if props.api_keys_secret_arn else {}),
        }


def _efs_volume(name: str, file_system_id: str, access_point_id: str) -> EcsTaskDefinitionVolume:
    return EcsTaskDefinitionVolume(name=name, efs_volume_configuration=EcsTaskDefinitionVolumeEfsVolumeConfiguration(
        file_system_id=file_system_id, transit_encryption="ENABLED",
        authorization_config=EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
            access_point_id=access_point_id, iam="ENABLED")))


def _target_group(props: EndpointServiceProps, routing: EndpointRouting | None) -> LbTargetGroup:
    assert routing is not None, "checked in EndpointService"
    if props.target_group_key is None:
        return routing.target_group
    if props.target_group_key not in routing.target_groups:
        raise ValueError(f"endpoint service {props.name}: routing has no target group {props.target_group_key!r}; "
                         f"it has {', '.join(routing.target_groups) or 'none keyed'}")
    return routing.target_groups[props.target_group_key]


def _traffic_shifting(props: EndpointServiceProps,
                      routing: EndpointRouting | None) -> EcsServiceLoadBalancerAdvancedConfiguration | None:
    if props.gradual_rollout is None or routing is None:
        return None
    if routing.alternate_target_group is None or routing.traffic_shift_role is None:
        raise ValueError(f"endpoint {props.name}: a gradual rollout needs routing with traffic shifting "
                         "(EndpointRoutingProps.traffic_shifting)")
    return EcsServiceLoadBalancerAdvancedConfiguration(
        alternate_target_group_arn=routing.alternate_target_group.arn,
        production_listener_rule=routing.listener_rule.arn, role_arn=routing.traffic_shift_role.arn)


def _deployment_configuration(rollout: GradualRollout | None) -> EcsServiceDeploymentConfiguration | None:
    if rollout is None:
        return None
    if rollout.strategy == "CANARY":
        return EcsServiceDeploymentConfiguration(
            strategy="CANARY", bake_time_in_minutes=str(rollout.bake_minutes),
            canary_configuration=EcsServiceDeploymentConfigurationCanaryConfiguration(
                canary_percent=rollout.percent, canary_bake_time_in_minutes=str(rollout.step_bake_minutes)))
    return EcsServiceDeploymentConfiguration(
        strategy="LINEAR", bake_time_in_minutes=str(rollout.bake_minutes),
        linear_configuration=EcsServiceDeploymentConfigurationLinearConfiguration(
            step_percent=rollout.percent, step_bake_time_in_minutes=str(rollout.step_bake_minutes)))


def _capacity_strategy(spot_percent: int) -> list[EcsServiceCapacityProviderStrategy]:
    """The first task always on regular Fargate (base 1), the rest split by weight."""
    strategy = [EcsServiceCapacityProviderStrategy(capacity_provider=FARGATE, base=1, weight=100 - spot_percent)]
    if spot_percent:
        strategy.append(EcsServiceCapacityProviderStrategy(capacity_provider=FARGATE_SPOT, base=0,
                                                           weight=spot_percent))
    return strategy
