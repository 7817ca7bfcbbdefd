"""Endpoint services in a moto ECS, as the endpoint stacks leave them: one cluster, a service per endpoint, each on a
task definition whose server container runs `<repository>:<tag>`. Set MOTO_ECS_SERVICE_RUNNING before creating
them to have moto report the deployment COMPLETED (running >= desired), as ECS does once the tasks are healthy."""

from __future__ import annotations

from typing import Any

from serving.contract import SERVER_CONTAINER

REPOSITORY = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlops/staging/model-server"


def register(ecs: Any, family: str, tag: str) -> str:
    return ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": SERVER_CONTAINER, "image": f"{REPOSITORY}:{tag}", "memory": 512}])["taskDefinition"][
        "taskDefinitionArn"]


def create_services(ecs: Any, cluster: str, services: list[str], tag: str) -> None:
    ecs.create_cluster(clusterName=cluster)
    for service in services:
        ecs.create_service(cluster=cluster, serviceName=service, desiredCount=1,
                           taskDefinition=register(ecs, f"{cluster}-{service}", tag))
