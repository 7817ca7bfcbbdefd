"""The ECS cluster of an environment: Fargate and Fargate Spot capacity, Container Insights, ECS Exec logging."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.ecs_cluster import (
    EcsCluster,
    EcsClusterConfiguration,
    EcsClusterConfigurationExecuteCommandConfiguration,
    EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration,
    EcsClusterSetting,
)
from cdktf_cdktf_provider_aws.ecs_cluster_capacity_providers import (
    EcsClusterCapacityProviders,
    EcsClusterCapacityProvidersDefaultCapacityProviderStrategy,
)
from constructs import Construct

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"


@dataclass(frozen=True)
class ClusterProps:
    name: str
    kms_key_arn: str
    """Encrypts ECS Exec sessions and their log group."""
    exec_log_retention_days: int = 365


class Cluster(Construct):
    """Attributes: `cluster`, `name`, `arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: ClusterProps):
        super().__init__(scope, construct_id)
        exec_logs = CloudwatchLogGroup(self, "exec-log-group", name=f"/ecs/{props.name}/exec",
                                       retention_in_days=props.exec_log_retention_days,
                                       kms_key_id=props.kms_key_arn)
        self.cluster = EcsCluster(
            self, "cluster",
            name=props.name,
            setting=[EcsClusterSetting(name="containerInsights", value="enhanced")],
            configuration=EcsClusterConfiguration(
                execute_command_configuration=EcsClusterConfigurationExecuteCommandConfiguration(
                    kms_key_id=props.kms_key_arn,
                    logging="OVERRIDE",
                    log_configuration=EcsClusterConfigurationExecuteCommandConfigurationLogConfiguration(
                        cloud_watch_log_group_name=exec_logs.name, cloud_watch_encryption_enabled=True),
                ),
            ),
        )
        # Services choose their own Fargate/Spot split; the default only applies to tasks run without one.
        EcsClusterCapacityProviders(
            self, "capacity-providers", cluster_name=self.cluster.name,
            capacity_providers=[FARGATE, FARGATE_SPOT],
            default_capacity_provider_strategy=[
                EcsClusterCapacityProvidersDefaultCapacityProviderStrategy(capacity_provider=FARGATE, weight=1,
                                                                           base=0)],
        )
        self.name: str = self.cluster.name
        self.arn: str = self.cluster.arn
