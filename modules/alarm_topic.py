"""The SNS topic every alarm of an environment notifies, encrypted, with optional email subscriptions."""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct


@dataclass(frozen=True)
class AlarmTopicProps:
    name: str
    kms_key_arn: str
    """The key's policy must let CloudWatch use it (EncryptionKeyProps.allow_cloudwatch_alarms)."""
    emails: tuple[str, ...] = field(default_factory=tuple)


class AlarmTopic(Construct):
    """Attributes: `topic`, `arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: AlarmTopicProps):
        super().__init__(scope, construct_id)
        self.topic = SnsTopic(self, "topic", name=props.name, kms_master_key_id=props.kms_key_arn)
        for address in props.emails:
            # The address is the ID: adding or removing one subscription leaves the others alone.
            SnsTopicSubscription(self, f"email-{address}", topic_arn=self.topic.arn, protocol="email",
                                 endpoint=address)
        self.arn: str = self.topic.arn
