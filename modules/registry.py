"""ECR repository for the serving image: immutable tags, scan on push, KMS encryption, lifecycle policy."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from constructs import Construct


@dataclass(frozen=True)
class ImageRepositoryProps:
    name: str
    kms_key_arn: str
    keep_images: int = 30
    """Tagged images kept (the newest); older ones expire."""
    untagged_expire_days: int = 7

    def __post_init__(self) -> None:
        if self.keep_images < 2:
            raise ValueError(f"ImageRepositoryProps.keep_images {self.keep_images}: keep at least 2, the running image "
                             "and the one a rollback returns to")
        if self.untagged_expire_days < 1:
            raise ValueError(f"ImageRepositoryProps.untagged_expire_days {self.untagged_expire_days}: at least 1")


class ImageRepository(Construct):
    """Attributes: `repository`, `url`, `arn`, `name`."""

    def __init__(self, scope: Construct, construct_id: str, props: ImageRepositoryProps):
        super().__init__(scope, construct_id)
        self.repository = EcrRepository(
            self, "repository",
            name=props.name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS",
                                                                           kms_key=props.kms_key_arn)],
        )
        EcrLifecyclePolicy(self, "lifecycle", repository=self.repository.name, policy=json.dumps({"rules": [
            {"rulePriority": 1, "description": f"expire untagged images after {props.untagged_expire_days} days",
             "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                           "countNumber": props.untagged_expire_days},
             "action": {"type": "expire"}},
            {"rulePriority": 2, "description": f"keep the newest {props.keep_images} images",
             "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": props.keep_images},
             "action": {"type": "expire"}},
        ]}))
        self.url: str = self.repository.repository_url
        self.arn: str = self.repository.arn
        self.name: str = self.repository.name
