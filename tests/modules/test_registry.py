"""modules/registry.py: an ECR repository (immutable tags, scanned, KMS) whose lifecycle keeps the newest images."""

from __future__ import annotations

import json

import pytest

from modules.registry import ImageRepository, ImageRepositoryProps
from tests.infra.synth import only, ref
from tests.support.construct_synth import arn, synth_stack

KEY = arn("kms", "key/k")


def rules(stack) -> list[dict]:
    return json.loads(only(stack, "aws_ecr_lifecycle_policy")[1]["policy"])["rules"]


def test_defaults_immutable_scanned_encrypted_keeping_30_images():
    stack = synth_stack(lambda s: ImageRepository(s, "image", ImageRepositoryProps(name="p/model-server",
                                                                                   kms_key_arn=KEY)))
    repository_id, repository = only(stack, "aws_ecr_repository")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert repository["image_scanning_configuration"] == {"scan_on_push": True}
    assert repository["encryption_configuration"] == [{"encryption_type": "KMS", "kms_key": KEY}]
    assert only(stack, "aws_ecr_lifecycle_policy")[1]["repository"] == ref("aws_ecr_repository", repository_id,
                                                                           "name")
    untagged, newest = rules(stack)
    assert untagged["selection"] == {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                                     "countNumber": 7}
    assert newest["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}


def test_options_set_the_counts():
    stack = synth_stack(lambda s: ImageRepository(s, "image", ImageRepositoryProps(
        name="r", kms_key_arn=KEY, keep_images=2, untagged_expire_days=1)))
    assert [rule["selection"]["countNumber"] for rule in rules(stack)] == [1, 2]


@pytest.mark.parametrize("changes, message", [
    ({"keep_images": 1}, "keep_images 1: keep at least 2, the running image and the one a rollback returns to"),
    ({"untagged_expire_days": 0}, "untagged_expire_days 0: at least 1"),
])
def test_props_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        ImageRepositoryProps(name="r", kms_key_arn=KEY, **changes)
