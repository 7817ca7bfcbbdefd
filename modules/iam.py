"""IAM policy documents as plain data, rendered to JSON once (tokens inside strings resolve at synth)."""

from __future__ import annotations

import json
from typing import Any

Statement = dict[str, Any]


def policy_document(*statements: Statement) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str | list[str], source_account: str | None = None) -> str:
    """Trust policy letting AWS services assume the role; scoped to our account when given (confused deputy)."""
    statement: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document(statement)


def deny_insecure_transport(bucket_arn: str) -> Statement:
    """Refuse any request to the bucket that is not made over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
