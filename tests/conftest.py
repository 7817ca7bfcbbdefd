"""Shared test settings: quiet jsii, paths to the shipped configuration and test fixtures, and one synth per
configuration per test session (the default configuration and the all-options fixture)."""

import os

import pytest

from configuration import load_config
from tests.support.paths import DEFAULT_CONFIG, FIXTURES

# jsii prints a Node end-of-life banner on every start; the Makefile sets the same.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")



@pytest.fixture
def s3(monkeypatch):
    """A moto S3 holding the staging model bucket of tests/delivery_helpers.CONFIG; fake credentials, so nothing
    can reach AWS."""
    import boto3
    from moto import mock_aws

    from tests.support.delivery import BUCKET

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture(scope="session")
def default_config():
    return load_config(DEFAULT_CONFIG)


@pytest.fixture(scope="session")
def default_synth(default_config, tmp_path_factory):
    from tests.infra.synth import synthesize  # the provider bindings load on first use only

    return synthesize(default_config, tmp_path_factory.mktemp("default") / "cdktf.out")


@pytest.fixture(scope="session")
def options_config():
    return load_config(FIXTURES / "all-options.yaml")


@pytest.fixture(scope="session")
def options_synth(options_config, tmp_path_factory):
    from tests.infra.synth import synthesize

    return synthesize(options_config, tmp_path_factory.mktemp("options") / "cdktf.out")


@pytest.fixture(scope="session")
def moto_url():
    """One moto server for the session (its own thread): for tests whose programs run as processes. Each test names
    its resources uniquely."""
    from moto.server import ThreadedMotoServer

    from tests.support.repository_copy import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def clients(moto_url):
    """S3, SQS and SNS clients of the session's moto server."""
    import boto3

    from tests.support.async_endpoint import REGION

    options = {"endpoint_url": moto_url, "region_name": REGION, "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}
    return boto3.client("s3", **options), boto3.client("sqs", **options), boto3.client("sns", **options)
