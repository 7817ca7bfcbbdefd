"""Who may call an endpoint, in Secrets Manager: the API key set (salted digests, never keys) of an `api_key`
endpoint, and the smoke test's credentials of an `api_key` or `jwt` endpoint.

The key set starts empty (every request refused) and is written by `python -m pipeline.keys`; the task receives it
through ECS `secrets` at start and reads the secret again every refresh interval (serving/auth.py). Terraform writes
the first version only: it is labelled `TERRAFORM_INITIAL` as well, so Secrets Manager never purges it as an
outdated version (which would make Terraform write the empty set again), and later values are not Terraform's.

The smoke credentials secret holds what the pipeline's smoke test calls with: for API keys, the one key the deploy
step issues; for JWT, the OAuth client (token URL, client id and secret) an operator stores once with
`python -m pipeline.keys smoke-client`. Its policy
refuses `GetSecretValue` to every principal but the ones named (the smoke step's role, or the environment's deploy
role that step assumes), administrators included. Both secrets are deleted without a recovery window when the stack
is destroyed: they hold digests and a test key, and a recovery window would block deploying the endpoint again.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.secretsmanager_secret_policy import SecretsmanagerSecretPolicy
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion
from constructs import Construct

from modules.iam import Statement, policy_document
from serving.contract import key_set_document

INITIAL_VERSION_LABEL = "TERRAFORM_INITIAL"


@dataclass(frozen=True)
class ApiKeysProps:
    key_set_name: str
    """`<project>/<env>/<endpoint>/api-keys`."""
    smoke_key_name: str
    """`<project>/<env>/<endpoint>/smoke-key`."""
    kms_key_arn: str
    smoke_readers: tuple[str, ...]
    """Role ARNs that may read the smoke credentials; nobody else can."""
    key_set: bool = True
    """False for a JWT endpoint: the smoke test's credentials only (the load balancer checks the tokens)."""

    def __post_init__(self) -> None:
        if not self.smoke_readers:
            raise ValueError(f"ApiKeysProps {self.key_set_name}: name at least one smoke key reader")


class ApiKeys(Construct):
    """Attributes: `key_set` (the secret; None without one), `key_set_arn` (None without one), `smoke_key` (the
    secret), `smoke_key_arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: ApiKeysProps):
        super().__init__(scope, construct_id)
        self.key_set: SecretsmanagerSecret | None = None
        self.key_set_arn: str | None = None
        if props.key_set:
            self.key_set = SecretsmanagerSecret(
                self, "key-set", name=props.key_set_name, kms_key_id=props.kms_key_arn, recovery_window_in_days=0,
                description="API key digests of this endpoint (python -m pipeline.keys); never the keys")
            SecretsmanagerSecretVersion(
                self, "empty-key-set", secret_id=self.key_set.id, secret_string=key_set_document([]),
                version_stages=["AWSCURRENT", INITIAL_VERSION_LABEL],
                lifecycle=TerraformResourceLifecycle(ignore_changes=["secret_string", "version_stages"]))
            self.key_set_arn = self.key_set.arn
        self.smoke_key = SecretsmanagerSecret(
            self, "smoke-key", name=props.smoke_key_name, kms_key_id=props.kms_key_arn, recovery_window_in_days=0,
            description="The key the pipeline's smoke test calls this endpoint with (issued by the deploy step)"
            if props.key_set else "The OAuth client the pipeline's smoke test gets tokens with "
                                  "(python -m pipeline.keys smoke-client)")
        self.smoke_key_arn: str = self.smoke_key.arn
        only_readers: Statement = {
            "Sid": "OnlyTheSmokeTestReads", "Effect": "Deny", "Principal": "*",
            "Action": "secretsmanager:GetSecretValue", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": list(props.smoke_readers)}}}
        SecretsmanagerSecretPolicy(self, "smoke-key-policy", secret_arn=self.smoke_key.arn,
                                   policy=policy_document(only_readers))
