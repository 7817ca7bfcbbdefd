"""`make doctor`: the local half without credentials, and a bootstrapped account in moto (state bucket, the pipeline
with its connection still pending, staging's platform and one endpoint with its live model)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from configuration import load_config
from pipeline import doctor
from pipeline.doctor import MISSING, NOT_YET, READY, UNKNOWN
from tests.support.paths import DEFAULT_CONFIG

REGION = "eu-west-1"


def state(outputs: dict | None = None) -> bytes:
    return json.dumps({"version": 4, "resources": [{"mode": "managed", "type": "aws_s3_bucket", "name": "x"}],
                       "outputs": {key: {"value": value} for key, value in (outputs or {}).items()}}).encode()


class Connections:
    """CodeStar Connections, which moto lacks: the pipeline's connection, still PENDING."""

    def get_connection(self, ConnectionArn: str) -> dict:  # noqa: N803 - boto3's parameter name
        return {"Connection": {"ConnectionArn": ConnectionArn, "ConnectionStatus": "PENDING"}}


class Session:
    def __init__(self):
        self.session = boto3.Session(region_name=REGION)

    def client(self, service: str, **kwargs):
        return Connections() if service == "codestar-connections" else self.session.client(service, **kwargs)


@pytest.fixture
def config():
    return load_config(DEFAULT_CONFIG)


def test_without_credentials_the_local_half_is_reported_and_the_rest_is_named(config, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    items = doctor.aws(config, boto3.Session(region_name=REGION), lambda environment: None)
    assert [(item.status, item.what) for item in items] == [(MISSING, "aws identity"), (UNKNOWN, "aws")]
    local = {item.what: item.status for item in doctor.tools(config)}
    assert local["python"] == READY and local["terraform"] == READY and local["packages"] == READY


def test_a_bootstrapped_account_shows_what_is_deployed_and_what_blocks_the_next_step(config, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = Session()
        s3 = session.client("s3")
        assert [item.status for item in doctor.aws(config, session, lambda e: session)][-1] == NOT_YET  # bootstrap
        for bucket in ("mlops-tfstate-eu-west-1", "mlops-staging-models-eu-west-1"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        connection = "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0a1b2c3d"
        for stack, outputs in (("mlops-pipeline", {"pipeline-name": "mlops-delivery",
                                                   "github-connection-arn": connection}),
                               ("mlops-staging-platform", {}), ("mlops-staging-endpoint-a", {})):
            s3.put_object(Bucket="mlops-tfstate-eu-west-1", Key=f"{stack}/terraform.tfstate", Body=state(outputs))
        s3.put_object(Bucket="mlops-staging-models-eu-west-1", Key="a/3/metadata.json", Body=b'{"version": "3"}')
        s3.put_object(Bucket="mlops-staging-models-eu-west-1", Key="a/3/model.onnx", Body=b"onnx")
        s3.put_object(Bucket="mlops-staging-models-eu-west-1", Key="a/LIVE", Body=b"3\n")
        items = doctor.aws(config, session, lambda environment: session)
    found = {item.what: (item.status, item.detail) for item in items}
    assert found["aws identity"][0] == READY and found["staging: account"] == (READY, "123456789012")
    assert found["bootstrap"] == (READY, "state bucket mlops-tfstate-eu-west-1")
    assert found["pipeline"] == (READY, "mlops-delivery deployed")
    assert found["source connection"][0] == MISSING and "is PENDING: authorize it once in the console" in \
        found["source connection"][1]
    assert found["staging: platform"][0] == READY
    assert found["staging: endpoint a"] == (READY, "deployed, live model version 3")
    assert found["staging: endpoint b"] == (NOT_YET, "not deployed")
    assert found["prod: platform"][0] == NOT_YET
    print(doctor.report(items))
