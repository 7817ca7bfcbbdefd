"""`<project>-<env>-platform`: what every endpoint of one environment shares.

Network, load balancer, ECS cluster, the serving image repository and the alarm topic. Endpoint stacks read these
through cdktf cross-stack references (remote state), never through hard-coded IDs. The repository holds only the
images deployed to this environment: the deploy step copies the approved image here, after this stack and before
the endpoint stacks, so the newest images are always the ones that run or ran last.
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from constructs import Construct

from configuration import MlopsConfig
from configuration.model import EXPOSURE_OF_BALANCER
from configuration.naming import ALB_NAME_MAX, aws_name
from configuration.resolved import ResolvedEnvironment
from modules.alarm_topic import AlarmTopic, AlarmTopicProps
from modules.certificate import DnsValidatedCertificate, DnsValidatedCertificateProps
from modules.cluster import Cluster, ClusterProps
from modules.encryption import EncryptionKey, EncryptionKeyProps
from modules.load_balancer import LoadBalancer, LoadBalancerProps
from modules.network import IAM_NAME_PREFIX_MAX, Network, NetworkProps
from modules.permission_boundaries import WorkloadBoundary
from modules.private_link import PrivateLinkService, PrivateLinkServiceProps
from modules.registry import ImageRepository, ImageRepositoryProps
from modules.secure_bucket import SecureBucket, SecureBucketProps
from stacks.common import add_aws_provider, policy_arn, use_remote_state


class PlatformStack(TerraformStack):
    """Attributes: `network`, `key`, `load_balancers` (by exposure: `public`, `internal`), `private_link` (None
    without `private_link`), `cluster`, `repository`, `model_bucket`, `capture_bucket`,
    `alarm_topic`, `hosted_zone_id` (None without a Route 53 domain), `environment`."""

    def __init__(self, scope: Construct, stack_name: str, config: MlopsConfig, resolved: ResolvedEnvironment):
        super().__init__(scope, stack_name)
        env = resolved.settings
        environment = self.environment = resolved.name
        add_aws_provider(self, config, environment)
        use_remote_state(self, config, stack_name)
        name_prefix = resolved.name_prefix
        account = DataAwsCallerIdentity(self, "account").account_id

        self.key = EncryptionKey(self, "key", EncryptionKeyProps(
            alias=name_prefix, description=f"{name_prefix}: logs, images, data and alarms at rest",
            region=config.region, allow_cloudwatch_logs=True,
            allow_service_publishers=("cloudwatch.amazonaws.com", "events.amazonaws.com",
                                      "codestar-notifications.amazonaws.com")))
        self.network = Network(self, "network", NetworkProps(
            name_prefix=name_prefix,
            region=config.region,
            vpc_cidr=env.vpc_cidr,
            public_subnet_cidrs=resolved.public_subnet_cidrs,
            private_subnet_cidrs=resolved.private_subnet_cidrs,
            availability_zones=resolved.availability_zones,
            nat_gateways=env.nat_gateways,
            enable_vpc_endpoints=env.enable_vpc_endpoints,
            flow_logs_retention_days=env.flow_logs_retention_days,
            flow_logs_kms_key_arn=self.key.arn,
            flow_log_role_name_prefix=aws_name(name_prefix, "flow-logs", max_length=IAM_NAME_PREFIX_MAX - 1) + "-",
            permissions_boundary_arn=self._workload_boundary(resolved, account),
        ))

        certificate_arn = None
        self.hosted_zone_id = env.domain.hosted_zone_id if env.domain else None
        if env.domain is not None:
            certificate_arn = env.domain.certificate_arn or DnsValidatedCertificate(
                self, "certificate", DnsValidatedCertificateProps(
                    domain_name=env.domain.name, hosted_zone_id=env.domain.hosted_zone_id or "")).arn
        access_logs_bucket = None
        if env.enable_alb_access_logs:
            access_logs_bucket = SecureBucket(self, "alb-access-logs", SecureBucketProps(
                bucket_name=aws_name(name_prefix, "alb-logs", config.region, max_length=63),
                log_delivery_service="logdelivery.elasticloadbalancing.amazonaws.com",
                log_delivery_source_account=account)).name
        # Keyed by the `exposure` of the endpoints each one routes to. The internet-facing one keeps the construct
        # ID it had before internal load balancers existed.
        self.load_balancers: dict[str, LoadBalancer] = {}
        for kind in env.load_balancers:
            internal = kind == "internal"
            self.load_balancers[EXPOSURE_OF_BALANCER[kind]] = LoadBalancer(
                self, "internal-load-balancer" if internal else "load-balancer", LoadBalancerProps(
                    name=resolved.internal_load_balancer_name if internal else resolved.load_balancer_name,
                    vpc_id=self.network.vpc_id,
                    subnet_ids=self.network.private_subnet_ids if internal else self.network.public_subnet_ids,
                    internal=internal,
                    ingress_cidrs=tuple(env.internal_ingress_cidrs or [env.vpc_cidr]) if internal
                    else tuple(env.alb_ingress_cidrs),
                    certificate_arn=certificate_arn,
                    idle_timeout_seconds=env.alb_idle_timeout_seconds,
                    deletion_protection=env.production,
                    web_acl_arn=env.waf_web_acl_arn,
                    access_logs_bucket=access_logs_bucket,
                ))
        self.private_link: PrivateLinkService | None = None
        if env.private_link is not None:
            self.private_link = PrivateLinkService(self, "private-link", PrivateLinkServiceProps(
                name=aws_name(name_prefix, "link", max_length=ALB_NAME_MAX), vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids, load_balancer=self.load_balancers["internal"],
                port=443 if certificate_arn else 80, allowed_principals=tuple(env.private_link.allowed_principals),
                acceptance_required=env.private_link.acceptance_required, deletion_protection=env.production))
        self.cluster = Cluster(self, "cluster", ClusterProps(name=resolved.cluster_name, kms_key_arn=self.key.arn))
        self.repository = ImageRepository(self, "serving-image", ImageRepositoryProps(
            name=resolved.serving_repository_name, kms_key_arn=self.key.arn,
            keep_images=env.ecr_keep_images))
        # Model versions are promoted here (python -m pipeline.models); EventBridge carries each change of an
        # endpoint's LIVE object to that endpoint's sync task.
        self.model_bucket = SecureBucket(self, "model-bucket", SecureBucketProps(
            bucket_name=resolved.model_bucket_name, kms_key_arn=self.key.arn))
        S3BucketNotification(self, "model-bucket-events", bucket=self.model_bucket.bucket.id, eventbridge=True)
        # Each endpoint's capture export task writes captured requests here (SageMaker Data Capture's layout).
        self.capture_bucket = SecureBucket(self, "capture-bucket", SecureBucketProps(
            bucket_name=resolved.capture_bucket_name, kms_key_arn=self.key.arn,
            expire_after_days=env.capture_retention_days))
        self.alarm_topic = AlarmTopic(self, "alarms", AlarmTopicProps(
            name=f"{name_prefix}-alarms", kms_key_arn=self.key.arn, emails=tuple(env.alarm_emails)))

        TerraformOutput(self, "vpc-id", value=self.network.vpc_id)
        TerraformOutput(self, "private-subnet-ids", value=self.network.private_subnet_ids)
        TerraformOutput(self, "public-subnet-ids", value=self.network.public_subnet_ids)
        scheme = "https" if certificate_arn else "http"
        for exposure, balancer in self.load_balancers.items():
            base_url = f"{scheme}://{env.domain.name}" if env.domain else f"{scheme}://{balancer.dns_name}"
            TerraformOutput(self, "base-url" if exposure == "public" else "internal-base-url", value=base_url,
                            description=f"Where the {exposure} endpoints are served")
        if self.private_link is not None:
            TerraformOutput(self, "private-link-service-name", value=self.private_link.service_name,
                            description="Consumers in other accounts create an interface endpoint to this service")
        TerraformOutput(self, "serving-repository-url", value=self.repository.url,
                        description="Push the model server image here")
        TerraformOutput(self, "alarm-topic-arn", value=self.alarm_topic.arn)
        TerraformOutput(self, "model-bucket-name", value=self.model_bucket.name,
                        description="python -m pipeline.models promote uploads model versions here")
        TerraformOutput(self, "capture-bucket-name", value=self.capture_bucket.name,
                        description="Captured requests, <endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl")

    def _workload_boundary(self, resolved: ResolvedEnvironment, account: str) -> str:
        """The ARN of the boundary this environment's roles carry: the bootstrap stack's, or, for an environment
        deployed through its own role (and account), one this stack creates there."""
        if not resolved.owns_workload_boundary:
            return policy_arn(self, account, resolved.workload_boundary_name)
        return WorkloadBoundary(self, "workload-boundary", resolved.workload_boundary_name).arn
