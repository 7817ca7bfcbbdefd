"""`<project>-<env>-endpoint-<name>`: one ML endpoint on the environment's platform.

Everything the endpoint owns lives here, so adding endpoint B creates a new stack and changes neither endpoint A's
stack nor the platform's. The platform's resources are read through cross-stack references (remote state).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.route53_record import Route53Record, Route53RecordAlias
from constructs import Construct

from configuration import EndpointConfig, MlopsConfig
from configuration.naming import (
    EVENT_RULE_NAME_MAX,
    IAM_NAME_MAX,
    SCHEDULE_NAME_MAX,
    aws_name,
    build_role_name,
    delivery_role_path,
    smoke_step_name,
)
from configuration.resolved import ResolvedEndpoint, ResolvedVariant
from modules.api_keys import ApiKeys, ApiKeysProps
from modules.async_requests import AsyncRequests, AsyncRequestsProps, queue_name
from modules.autoscaling import ConcurrencyMetric, ScheduledBounds, ServiceAutoscaling, ServiceAutoscalingProps
from modules.capture_export import CaptureExport, CaptureExportProps
from modules.endpoint_routing import (
    EndpointRouting,
    EndpointRoutingProps,
    JwtValidation,
    RequiredClaim,
    TrafficShifting,
    WeightedTargetGroup,
)
from modules.endpoint_service import EndpointService, EndpointServiceProps, GradualRollout
from modules.model_monitor import ModelMonitor, ModelMonitorProps, QualityAlarm, ServedRequests
from modules.model_storage import ModelStorage, ModelStorageProps
from modules.model_sync import ModelSync, ModelSyncProps
from modules.monitoring import EndpointMonitoring, EndpointMonitoringProps
from modules.queue_scaling import QueueScaling, QueueScalingProps
from modules.shadow_discovery import ShadowDiscovery, ShadowDiscoveryProps
from modules.smoke_probe import SmokeProbe, SmokeProbeProps
from modules.task_identity import TaskIdentity, TaskIdentityProps
from serving.contract import (
    CONCURRENCY_METRIC,
    DATA_MOUNT,
    DEFAULT_VARIANT,
    MODELS_MOUNT,
    SERVING_METRICS_NAMESPACE,
    WORKER_PROGRAM,
    ProbeVariable,
    ServerVariable,
    WorkerVariable,
    async_prefixes,
    monitor_image_tag,
)
from stacks.common import add_aws_provider, policy_arn, role_arn, use_remote_state
from stacks.platform import PlatformStack

CONCURRENCY_METRIC_SECONDS = 10
"""How often a server scaled on concurrency publishes its requests in progress (as SageMaker samples its own)."""


class EndpointStack(TerraformStack):
    """Attributes: `identity`, `storage`, `routing` (None for an asynchronous endpoint), `model_sync`,
    `capture_export`, `model_monitor` (None unless `monitoring.enabled`), `shadow_discovery` (None without a shadow),
    `api_keys` (None with `auth.type: none`), `smoke_probe` (behind an internal load balancer, else None),
    `async_requests` (an asynchronous endpoint's bucket, queue and topics, else None), and per variant (`main`
    without variants, and for an asynchronous endpoint's worker) `services`, `monitors`, `autoscalers`; `service`,
    `monitoring` and `autoscaling` are the first variant's."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig, resolved: ResolvedEndpoint,
                 platform: PlatformStack, image_tag: str):
        super().__init__(scope, stack_name)
        settings = resolved.settings
        environment, endpoint = resolved.environment, resolved.name
        env = config.environments[environment]
        add_aws_provider(self, config, environment, endpoint)
        use_remote_state(self, config, stack_name)
        name_prefix = resolved.name_prefix
        account = DataAwsCallerIdentity(self, "account").account_id
        network = platform.network
        assert resolved.is_async or settings.exposure is not None, "the configuration rules require an exposure"
        balancer = platform.load_balancers[settings.exposure] if not resolved.is_async else None

        image = f"{platform.repository.url}:{image_tag}"
        boundary = policy_arn(self, account, resolved.workload_boundary_name)
        self.identity = TaskIdentity(self, "identity", TaskIdentityProps(
            name_prefix=name_prefix, vpc_id=network.vpc_id, account_id=account,
            execution_role_name=aws_name(name_prefix, "execution", max_length=IAM_NAME_MAX),
            task_role_name=aws_name(name_prefix, "task", max_length=IAM_NAME_MAX),
            sync_role_name=aws_name(name_prefix, "model-sync", max_length=IAM_NAME_MAX),
            export_role_name=aws_name(name_prefix, "capture-export", max_length=IAM_NAME_MAX),
            permissions_boundary_arn=boundary))
        self.storage = ModelStorage(self, "storage", ModelStorageProps(
            name_prefix=name_prefix, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
            kms_key_arn=platform.key.arn, client_security_group_id=self.identity.security_group_id,
            reader_writer_role_arn=self.identity.task_role.arn, model_writer_role_arn=self.identity.sync_role.arn,
            model_writer_security_group_id=self.identity.sync_security_group_id,
            capture_exporter_role_arn=self.identity.export_role.arn,
            capture_exporter_security_group_id=self.identity.export_security_group_id,
            throughput_mode=settings.efs_throughput_mode))
        self.routing = None if balancer is None else EndpointRouting(self, "routing", EndpointRoutingProps(
            target_group_name=resolved.target_group_name,
            vpc_id=network.vpc_id, listener_arn=balancer.listener.arn, container_port=settings.container_port,
            health_check_path=settings.health_check_path,
            priority=resolved.listener_priority,
            host=settings.host, path=settings.path,
            deregistration_delay_seconds=settings.deregistration_delay_seconds,
            weighted_target_groups=tuple(WeightedTargetGroup(variant.name, variant.target_group_name, variant.weight)
                                         for variant in resolved.variants if not variant.is_shadow),
            jwt_validation=JwtValidation(settings.auth.issuer or "", settings.auth.jwks_url or "", tuple(
                RequiredClaim(claim.name, tuple(claim.values), claim.format) for claim in settings.auth.claims))
            if settings.auth.type == "jwt" else None,
            traffic_shifting=TrafficShifting(
                alternate_target_group_name=resolved.alternate_target_group_name,
                role_name=aws_name(name_prefix, "traffic-shift", max_length=IAM_NAME_MAX), account_id=account,
                permissions_boundary_arn=boundary) if resolved.gradual_rollout else None))
        self.model_sync = ModelSync(self, "model-sync", ModelSyncProps(
            name_prefix=name_prefix, endpoint=endpoint, region=config.region, account_id=account,
            bucket_name=platform.model_bucket.name, bucket_arn=platform.model_bucket.arn, kms_key_arn=platform.key.arn,
            cluster_arn=platform.cluster.arn, subnet_ids=network.private_subnet_ids, image=image,
            log_retention_days=settings.log_retention_days, keep_versions=settings.model_versions_kept,
            schedule=env.model_sync_schedule,
            events_role_name=aws_name(name_prefix, "sync-events", max_length=IAM_NAME_MAX),
            upload_rule_name=aws_name(name_prefix, "model-live", max_length=EVENT_RULE_NAME_MAX),
            schedule_rule_name=aws_name(name_prefix, "model-repair", max_length=EVENT_RULE_NAME_MAX),
            first_sync_schedule_name=aws_name(name_prefix, "model-first-sync", max_length=SCHEDULE_NAME_MAX),
            permissions_boundary_arn=boundary,
            pinned_versions=tuple(sorted(set(resolved.pinned_versions.values())))),
            self.identity, self.storage)

        self.capture_export = CaptureExport(self, "capture-export", CaptureExportProps(
            name_prefix=name_prefix, endpoint=endpoint, region=config.region, account_id=account,
            bucket_name=platform.capture_bucket.name, bucket_arn=platform.capture_bucket.arn,
            kms_key_arn=platform.key.arn, cluster_arn=platform.cluster.arn, subnet_ids=network.private_subnet_ids,
            image=image, log_retention_days=settings.log_retention_days, schedule=env.capture_export_schedule,
            events_role_name=aws_name(name_prefix, "export-events", max_length=IAM_NAME_MAX),
            schedule_rule_name=aws_name(name_prefix, "capture-export", max_length=EVENT_RULE_NAME_MAX),
            permissions_boundary_arn=boundary), self.identity, self.storage)
        monitoring_settings = settings.monitoring
        self.model_monitor = ModelMonitor(self, "model-monitor", ModelMonitorProps(
            name_prefix=name_prefix, endpoint=endpoint, environment=environment, region=config.region,
            account_id=account, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
            cluster_arn=platform.cluster.arn, image=f"{platform.repository.url}:{monitor_image_tag(image_tag)}",
            execution_role_id=self.identity.execution_role.id, execution_role_arn=self.identity.execution_role.arn,
            capture_bucket_name=platform.capture_bucket.name, capture_bucket_arn=platform.capture_bucket.arn,
            capture_prefix="", model_bucket_name=platform.model_bucket.name,
            model_bucket_arn=platform.model_bucket.arn, kms_key_arn=platform.key.arn,
            topic_arn=platform.alarm_topic.arn,
            variants=tuple(variant.name for variant in resolved.variants) or (DEFAULT_VARIANT,),
            request_metrics={name: ServedRequests.through_target_group(balancer.arn_suffix, group.arn_suffix)
                             for name, group in (self.routing.target_groups.items() if self.routing.target_groups
                                                 else [(DEFAULT_VARIANT, self.routing.target_group)])}
            if balancer is not None and self.routing is not None
            else {DEFAULT_VARIANT: ServedRequests.through_queue(queue_name(name_prefix))},
            role_name=aws_name(name_prefix, "monitor", max_length=IAM_NAME_MAX),
            events_role_name=aws_name(name_prefix, "monitor-events", max_length=IAM_NAME_MAX),
            schedule_rule_name=aws_name(name_prefix, "monitor", max_length=EVENT_RULE_NAME_MAX),
            schedule=monitoring_settings.schedule, window_hours=monitoring_settings.window_hours,
            drift_alarm_windows=monitoring_settings.drift_alarm_windows,
            no_data_alarm_windows=monitoring_settings.no_data_alarm_windows,
            quality_alarm=QualityAlarm(monitoring_settings.quality_alarm.metric,
                                       monitoring_settings.quality_alarm.value)
            if monitoring_settings.quality_alarm else None,
            log_retention_days=settings.log_retention_days, permissions_boundary_arn=boundary,
        )) if monitoring_settings.enabled else None
        self.api_keys: ApiKeys | None = None
        self.shadow_discovery: ShadowDiscovery | None = None
        self.smoke_probe: SmokeProbe | None = None
        self.async_requests: AsyncRequests | None = None
        self.services: dict[str, EndpointService] = {}
        self.monitors: dict[str, EndpointMonitoring] = {}
        self.autoscalers: dict[str, ServiceAutoscaling | QueueScaling] = {}
        if balancer is None or self.routing is None:
            self._asynchronous(config, resolved, platform, image, image_tag, account)
            return
        probed = settings.exposure == "internal"
        probe_role_name = resolved.smoke_probe_role_name
        if settings.auth.type != "none":
            smoke_readers = (env.deploy_role_arn,) if env.deploy_role_arn else (
                role_arn(self, account, build_role_name(smoke_step_name(config.project, environment)),
                         delivery_role_path(config.project)),)
            if probed:  # ECS reads the credentials into the probe task as its execution role
                smoke_readers += (role_arn(self, account, probe_role_name),)
            self.api_keys = ApiKeys(self, "api-keys", ApiKeysProps(
                key_set_name=resolved.api_keys_secret_name, smoke_key_name=resolved.smoke_key_secret_name,
                kms_key_arn=platform.key.arn, smoke_readers=smoke_readers, key_set=settings.auth.type == "api_key"))
        shadow = resolved.shadow
        self.shadow_discovery = ShadowDiscovery(self, "shadow-discovery", ShadowDiscoveryProps(
            namespace_name=f"{name_prefix}.internal", service_label=shadow.name, vpc_id=network.vpc_id,
            security_group_id=self.identity.security_group_id,
            container_port=settings.container_port)) if shadow is not None else None
        server_environment = {
            ServerVariable.MODEL_NAME: endpoint,
            ServerVariable.MODELS_DIR: MODELS_MOUNT,
            ServerVariable.CAPTURE_DIR: DATA_MOUNT,
            ServerVariable.PORT: str(settings.container_port),
            ServerVariable.HEALTH_PATH: settings.health_check_path,
            ServerVariable.ROUTE_PREFIX: resolved.route_prefix,
            ServerVariable.CAPTURE_SAMPLE_PERCENT: f"{settings.capture_sample_percent:g}",
            ServerVariable.KEEP_ALIVE_SECONDS: str(resolved.server_keep_alive_seconds),
            ServerVariable.DRAIN_SECONDS: str(resolved.server_drain_seconds),
            ServerVariable.WORKERS: str(resolved.server_workers),
            ServerVariable.IMAGE_TAG: image_tag,
            ServerVariable.ENVIRONMENT: environment,
            **({ServerVariable.CONCURRENCY_METRIC_SECONDS: str(CONCURRENCY_METRIC_SECONDS)}
               if settings.scale_on == "concurrency" else {}),
        }
        for index, plan in enumerate(_variant_plans(resolved)):
            target_group = (self.routing.target_group if plan.variant is None
                            else self.routing.target_groups.get(plan.variant.name))
            monitoring = EndpointMonitoring(self, f"monitoring{plan.id_suffix}", EndpointMonitoringProps(
                name_prefix=plan.name_prefix, region=config.region,
                topic_arn=platform.alarm_topic.arn, load_balancer_arn_suffix=balancer.arn_suffix,
                target_group_arn_suffix=target_group.arn_suffix if target_group is not None else None,
                cluster_name=platform.cluster.name, service_name=plan.service_name,
                file_system_id=self.storage.file_system_id, min_tasks=settings.min_tasks,
                alarm_5xx_count=settings.alarm_5xx_count,
                alarm_p99_latency_seconds=settings.alarm_p99_latency_seconds,
                # One file system per endpoint: its alarm goes with the first variant only.
                efs_burst_credit_alarm_bytes=settings.efs_burst_credit_alarm_bytes
                if settings.efs_throughput_mode == "bursting" and index == 0 else None,
                alternate_target_group_arn_suffix=self.routing.alternate_target_group.arn_suffix
                if self.routing.alternate_target_group is not None else None))
            service = EndpointService(self, f"service{plan.id_suffix}", EndpointServiceProps(
                name=plan.service_name, name_prefix=plan.name_prefix,
                region=config.region, subnet_ids=network.private_subnet_ids,
                cluster_arn=platform.cluster.arn, load_balancer_security_group_id=balancer.security_group_id,
                image=image, repository_arn=platform.repository.arn,
                kms_key_arn=platform.key.arn, cpu=settings.cpu, memory_mib=settings.memory_mib,
                container_port=settings.container_port, health_check_path=settings.health_check_path,
                desired_count=settings.min_tasks, fargate_spot_percent=resolved.fargate_spot_percent,
                deregistration_delay_seconds=settings.deregistration_delay_seconds,
                health_check_grace_period_seconds=settings.health_check_grace_period_seconds,
                stop_timeout_seconds=settings.stop_timeout_seconds,
                enable_execute_command=settings.enable_execute_command,
                log_retention_days=settings.log_retention_days,
                rollback_alarm_names=monitoring.rollback_alarm_names,
                gradual_rollout=_gradual_rollout(settings) if resolved.gradual_rollout else None,
                start_after=(self.model_sync.initial_sync,),
                environment={**server_environment,
                             **_variant_environment(plan.variant, self.shadow_discovery, shadow)},
                target_group_key=plan.variant.name if plan.variant is not None and plan.serves else None,
                behind_load_balancer=plan.serves,
                # The variants share the endpoint's task security group: its rules are made once.
                open_network_path=index == 0,
                service_registry_arn=self.shadow_discovery.registry_arn
                if not plan.serves and self.shadow_discovery is not None else None,
                # The shadow answers only its siblings (their security group), never a client: no key to check.
                api_keys_secret_arn=self.api_keys.key_set_arn if self.api_keys is not None and plan.serves else None,
            ), self.identity, self.storage, self.routing)
            autoscaling = ServiceAutoscaling(self, f"autoscaling{plan.id_suffix}", ServiceAutoscalingProps(
                name_prefix=plan.name_prefix, cluster_name=platform.cluster.name, service_name=service.service_name,
                min_tasks=settings.min_tasks, max_tasks=settings.max_tasks,
                cpu_target_percent=settings.cpu_target_percent, memory_target_percent=settings.memory_target_percent,
                requests_per_target=settings.requests_per_target,
                request_count_resource_label=f"{balancer.arn_suffix}/{target_group.arn_suffix}"
                if target_group is not None else "",
                # Each server process publishes its own: the task's target shared among its processes.
                concurrency=ConcurrencyMetric(
                    SERVING_METRICS_NAMESPACE, CONCURRENCY_METRIC,
                    {"Model": endpoint, "Environment": environment, "Variant": plan.key},
                    settings.concurrency_per_task / resolved.server_workers)
                if settings.scale_on == "concurrency" else None,
                scheduled=tuple(ScheduledBounds(name=action.name, schedule=action.schedule,
                                                min_tasks=action.min_tasks, max_tasks=action.max_tasks,
                                                timezone=action.timezone)
                                for action in settings.scheduled_scaling)))
            self.services[plan.key], self.monitors[plan.key], self.autoscalers[plan.key] = (
                service, monitoring, autoscaling)
        first = next(iter(self.services))
        self.service, self.monitoring, self.autoscaling = (self.services[first], self.monitors[first],
                                                           self.autoscalers[first])
        if settings.host is not None and platform.hosted_zone_id is not None:
            Route53Record(self, "alias-record", zone_id=platform.hosted_zone_id, name=settings.host, type="A",
                          alias=Route53RecordAlias(name=balancer.dns_name, zone_id=balancer.zone_id,
                                                   evaluate_target_health=True))

        if probed:
            self.smoke_probe = SmokeProbe(self, "smoke-probe", SmokeProbeProps(
                name=resolved.smoke_probe_name, log_group_name=resolved.smoke_probe_log_group,
                execution_role_name=probe_role_name, region=config.region, account_id=account,
                vpc_id=network.vpc_id, image=image, repository_arn=platform.repository.arn,
                kms_key_arn=platform.key.arn, load_balancer_security_group_id=balancer.security_group_id,
                listener_port=443 if balancer.https else 80, environment=_probe_environment(
                    config, resolved, balancer.dns_name, image_tag),
                credentials_secret_arn=self.api_keys.smoke_key_arn if self.api_keys is not None else None,
                log_retention_days=settings.log_retention_days, permissions_boundary_arn=boundary))

        scheme = "https" if balancer.https else "http"
        host = settings.host or balancer.dns_name
        TerraformOutput(self, "url", value=f"{scheme}://{host}{resolved.route_prefix}",
                        description=f"Base URL of endpoint {endpoint}")
        TerraformOutput(self, "service-name", value=self.service.service_name)
        TerraformOutput(self, "file-system-id", value=self.storage.file_system_id)

    def _asynchronous(self, config: MlopsConfig, resolved: ResolvedEndpoint, platform: PlatformStack, image: str,
                      image_tag: str, account: str) -> None:
        """An asynchronous endpoint: its bucket, queue and topics, the worker service, its scaling and alarms."""
        settings, endpoint = resolved.settings, resolved.name
        queue_settings = settings.async_inference
        network = platform.network
        input_prefix, output_prefix, failure_prefix = async_prefixes(endpoint)
        requests = self.async_requests = AsyncRequests(self, "async-requests", AsyncRequestsProps(
            name_prefix=resolved.name_prefix, bucket_name=resolved.async_bucket_name, account_id=account,
            kms_key_arn=platform.key.arn, input_prefix=input_prefix, output_prefix=output_prefix,
            failure_prefix=failure_prefix, retention_days=queue_settings.retention_days,
            visibility_timeout_seconds=queue_settings.visibility_timeout_seconds,
            message_retention_days=queue_settings.message_retention_days, max_receives=queue_settings.max_receives))
        monitoring = EndpointMonitoring(self, "monitoring", EndpointMonitoringProps(
            name_prefix=resolved.name_prefix, region=config.region, topic_arn=platform.alarm_topic.arn,
            load_balancer_arn_suffix="", target_group_arn_suffix=None, cluster_name=platform.cluster.name,
            service_name=resolved.service_name, file_system_id=self.storage.file_system_id,
            min_tasks=settings.min_tasks,
            efs_burst_credit_alarm_bytes=settings.efs_burst_credit_alarm_bytes
            if settings.efs_throughput_mode == "bursting" else None,
            queue_name=requests.queue.name, dead_letter_queue_name=requests.dead_letter_queue.name))
        service = EndpointService(self, "worker", EndpointServiceProps(
            name=resolved.service_name, name_prefix=resolved.name_prefix, region=config.region,
            subnet_ids=network.private_subnet_ids, cluster_arn=platform.cluster.arn,
            load_balancer_security_group_id="", image=image, repository_arn=platform.repository.arn,
            kms_key_arn=platform.key.arn, cpu=settings.cpu, memory_mib=settings.memory_mib,
            container_port=settings.container_port, health_check_path=settings.health_check_path,
            desired_count=settings.min_tasks, fargate_spot_percent=resolved.fargate_spot_percent,
            stop_timeout_seconds=settings.stop_timeout_seconds,
            enable_execute_command=settings.enable_execute_command, log_retention_days=settings.log_retention_days,
            start_after=(self.model_sync.initial_sync,), behind_load_balancer=False, serves_http=False,
            entry_point=WORKER_PROGRAM, task_statements=requests.worker_statements(),
            environment={
                ServerVariable.MODEL_NAME: endpoint,
                ServerVariable.MODELS_DIR: MODELS_MOUNT,
                ServerVariable.CAPTURE_DIR: DATA_MOUNT,
                ServerVariable.CAPTURE_SAMPLE_PERCENT: f"{settings.capture_sample_percent:g}",
                ServerVariable.IMAGE_TAG: image_tag,
                ServerVariable.ENVIRONMENT: resolved.environment,
                WorkerVariable.QUEUE_URL: requests.queue.url,
                WorkerVariable.DEAD_LETTER_QUEUE_URL: requests.dead_letter_queue.url,
                WorkerVariable.BUCKET: requests.bucket.name,
                WorkerVariable.INPUT_PREFIX: input_prefix,
                WorkerVariable.OUTPUT_PREFIX: output_prefix,
                WorkerVariable.FAILURE_PREFIX: failure_prefix,
                WorkerVariable.SUCCESS_TOPIC_ARN: requests.success_topic.arn,
                WorkerVariable.ERROR_TOPIC_ARN: requests.error_topic.arn,
                WorkerVariable.MAX_RECEIVES: str(queue_settings.max_receives),
                WorkerVariable.CONCURRENCY: str(queue_settings.concurrency),
                WorkerVariable.VISIBILITY_TIMEOUT_SECONDS: str(queue_settings.visibility_timeout_seconds),
                WorkerVariable.MAX_REQUEST_BYTES: str(queue_settings.max_request_bytes),
                WorkerVariable.DRAIN_SECONDS: str(resolved.server_drain_seconds),
            }), self.identity, self.storage, None)
        scaling = QueueScaling(self, "autoscaling", QueueScalingProps(
            name_prefix=resolved.name_prefix, cluster_name=platform.cluster.name, service_name=service.service_name,
            queue_name=requests.queue.name, min_tasks=settings.min_tasks, max_tasks=settings.max_tasks,
            backlog_per_task=queue_settings.backlog_per_task, idle_minutes=queue_settings.idle_minutes))
        self.services[DEFAULT_VARIANT], self.monitors[DEFAULT_VARIANT], self.autoscalers[DEFAULT_VARIANT] = (
            service, monitoring, scaling)
        self.service, self.monitoring, self.autoscaling = service, monitoring, scaling
        TerraformOutput(self, "input", value=f"s3://{requests.bucket.name}/{input_prefix}",
                        description=f"Where requests to endpoint {endpoint} are put")
        TerraformOutput(self, "output", value=f"s3://{requests.bucket.name}/{output_prefix}",
                        description=f"Where endpoint {endpoint} writes its answers")
        TerraformOutput(self, "service-name", value=service.service_name)
        TerraformOutput(self, "file-system-id", value=self.storage.file_system_id)


@dataclass(frozen=True)
class _VariantPlan:
    """One service of the endpoint: a variant's, or (without variants) the endpoint's own, which keeps the construct
    IDs and names it had before variants existed."""

    key: str
    id_suffix: str
    name_prefix: str
    service_name: str
    serves: bool
    """Behind the load balancer (every variant but the shadow)."""
    variant: ResolvedVariant | None


def _variant_plans(resolved: ResolvedEndpoint) -> list[_VariantPlan]:
    if not resolved.variants:
        return [_VariantPlan(DEFAULT_VARIANT, "", resolved.name_prefix, resolved.service_name, True, None)]
    return [_VariantPlan(variant.name, f"-{variant.name}", variant.name_prefix, variant.service_name,
                         not variant.is_shadow, variant) for variant in resolved.variants]


def _variant_environment(variant: ResolvedVariant | None, discovery: ShadowDiscovery | None,
                         shadow: ResolvedVariant | None) -> dict[str, str]:
    """What a variant's server is told besides the endpoint's settings: its name, its pinned version, and for a
    serving variant of an endpoint with a shadow, where to copy requests and how many."""
    if variant is None:
        return {}
    environment = {ServerVariable.VARIANT: variant.name}
    if variant.model_version is not None:
        environment[ServerVariable.MODEL_VERSION] = variant.model_version
    if not variant.is_shadow and shadow is not None and discovery is not None:
        environment[ServerVariable.SHADOW_URL] = discovery.url
        environment[ServerVariable.SHADOW_PERCENT] = f"{shadow.shadow_percent:g}"
    return environment


def _probe_environment(config: MlopsConfig, resolved: ResolvedEndpoint, balancer_dns_name: str,
                       image_tag: str) -> dict[str, str]:
    """Where the probe calls the endpoint, as pipeline.smoke does from outside: with a domain, the endpoint's own
    HTTPS name (the certificate matches no other); without one, the load balancer's name with the endpoint's host."""
    settings = resolved.settings
    domain = config.environments[resolved.environment].domain
    if domain is not None:
        root, host = f"https://{settings.host or domain.name}", None
    else:
        root, host = f"http://{balancer_dns_name}", settings.host
    return {ProbeVariable.ENDPOINT: resolved.name, ProbeVariable.ROOT: f"{root}{resolved.route_prefix}",
            ProbeVariable.AUTH: settings.auth.type, ProbeVariable.IMAGE_TAG: image_tag,
            **({ProbeVariable.HOST: host} if host else {})}


def _gradual_rollout(settings: EndpointConfig) -> GradualRollout:
    if settings.rollout == "canary":
        return GradualRollout("CANARY", settings.canary_percent, settings.canary_bake_minutes,
                              settings.rollout_bake_minutes)
    return GradualRollout("LINEAR", settings.linear_step_percent, settings.linear_step_bake_minutes,
                          settings.rollout_bake_minutes)
