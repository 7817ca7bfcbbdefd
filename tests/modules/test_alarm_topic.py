"""modules/alarm_topic.py: an encrypted SNS topic with e-mail subscriptions."""

from __future__ import annotations

from modules.alarm_topic import AlarmTopic, AlarmTopicProps
from tests.infra.synth import only, ref, resources
from tests.support.construct_synth import arn, synth_stack

KEY = arn("kms", "key/k")


def test_defaults_an_encrypted_topic_without_subscriptions():
    stack = synth_stack(lambda s: AlarmTopic(s, "alarms", AlarmTopicProps(name="p-dev-alarms", kms_key_arn=KEY)))
    _, topic = only(stack, "aws_sns_topic")
    assert topic == {"name": "p-dev-alarms", "kms_master_key_id": KEY}
    assert resources(stack, "aws_sns_topic_subscription") == {}


def test_each_email_subscribes_to_the_topic():
    stack = synth_stack(lambda s: AlarmTopic(s, "alarms", AlarmTopicProps(
        name="t", kms_key_arn=KEY, emails=("a@example.com", "b@example.com"))))
    topic_id, _ = only(stack, "aws_sns_topic")
    subscriptions = sorted((body["endpoint"], body["protocol"], body["topic_arn"])
                           for body in resources(stack, "aws_sns_topic_subscription").values())
    assert subscriptions == [(address, "email", ref("aws_sns_topic", topic_id, "arn"))
                             for address in ("a@example.com", "b@example.com")]
