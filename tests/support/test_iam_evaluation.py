"""The project's IAM evaluator held to AWS's documented evaluation logic, case by case, each citing the IAM User
Guide page it follows: "Policy evaluation logic" / "Policy evaluation for requests within a single account"
(evaluation order, resource-based policies and boundaries), "Permissions boundaries for IAM entities", "IAM JSON
policy elements: Condition operators" (missing keys, negated operators, IfExists, Null, set operators), "Key policies
in AWS KMS" (the key policy is required), "IAM JSON policy elements: Resource" (wildcards within ARN segments)."""

from __future__ import annotations

import pytest

from tests.support.iam_evaluation import Caller, Policy, Request, arn_matches, condition_holds, evaluate

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s1"
CALLER = Caller(ACCOUNT, role_arn=ROLE, session_arn=SESSION)
BUCKET_OBJECT = "arn:aws:s3:::reports/2026/a.csv"


def policy(*statements: dict) -> Policy:
    return Policy("p", tuple(statements))


def allow(action: str = "s3:GetObject", resource: str = "*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str = "s3:GetObject", resource: str = "*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(identity=(), boundary=None, resource_policy=None, action="s3:GetObject", resource=BUCKET_OBJECT,
           caller=CALLER, kms=False, **context):
    return evaluate(Request(action, resource, context), caller, list(identity), boundary, resource_policy, kms)


# --- order of evaluation ----------------------------------------------------------------------------------------

def test_every_request_is_implicitly_denied_unless_something_allows_it():
    decision = decide()
    assert not decision.allowed and "no identity policy" in decision.reason


def test_an_explicit_deny_in_any_policy_overrides_every_allow():
    assert decide([policy(allow())]).allowed
    assert not decide([policy(allow()), policy(deny())]).allowed
    assert not decide([policy(allow())], resource_policy=policy({**deny(), "Principal": "*"})).allowed
    assert not decide([policy(allow())], boundary=policy(allow(), deny())).allowed
    # Even a resource policy's grant to the very session cannot beat an identity deny.
    grant = policy({**allow(), "Principal": {"AWS": SESSION}})
    assert not decide([policy(deny())], resource_policy=grant).allowed


def test_a_boundary_caps_what_identity_policies_grant():
    """The guide's example: a boundary allowing only S3, CloudWatch and EC2 leaves iam:CreateUser denied even when
    an identity policy allows it."""
    boundary = policy(allow(["s3:*", "cloudwatch:*", "ec2:*"]))
    identity = [policy(allow("iam:CreateUser"), allow("s3:GetObject"))]
    assert not decide(identity, boundary, action="iam:CreateUser", resource="*").allowed
    assert decide(identity, boundary).allowed
    # And a boundary grants nothing on its own.
    assert not decide([], boundary).allowed


def test_a_resource_policy_granting_the_session_is_not_limited_by_identity_policies_or_the_boundary():
    grant = policy({**allow(), "Principal": {"AWS": SESSION}})
    assert decide([], policy(allow("ec2:*")), grant).allowed


def test_a_resource_policy_granting_the_role_arn_is_limited_by_the_boundary():
    grant = policy({**allow(), "Principal": {"AWS": ROLE}})
    assert decide([], None, grant).allowed  # no boundary: the grant alone suffices within the account
    decision = decide([], policy(allow("ec2:*")), grant)
    assert not decision.allowed and "boundary" in decision.reason


def test_a_resource_policy_naming_the_account_delegates_to_identity_policies():
    grant = policy({**allow(), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    assert not decide([], None, grant).allowed
    assert decide([policy(allow())], None, grant).allowed


def test_a_kms_key_policy_must_allow_the_request_or_the_account_before_identity_policies_count():
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k"
    identity = [policy(allow("kms:Decrypt"))]
    only_service = policy({**allow("kms:*"), "Principal": {"Service": "logs.amazonaws.com"}})
    enables_iam = policy({**allow("kms:*"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    assert not decide(identity, None, only_service, "kms:Decrypt", key, kms=True).allowed
    assert not decide(identity, None, None, "kms:Decrypt", key, kms=True).allowed
    assert decide(identity, None, enables_iam, "kms:Decrypt", key, kms=True).allowed
    assert not decide([], None, enables_iam, "kms:Decrypt", key, kms=True).allowed


def test_a_service_principal_is_allowed_by_a_resource_policy_alone():
    logs = Caller(ACCOUNT, service="logs.amazonaws.com")
    trust = policy({"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"})
    assert decide([], None, trust, "sts:AssumeRole", ROLE, caller=logs).allowed
    assert not decide([], None, trust, "sts:AssumeRole", ROLE,
                      caller=Caller(ACCOUNT, service="codebuild.amazonaws.com")).allowed


# --- matching ---------------------------------------------------------------------------------------------------

def test_actions_match_case_insensitively_and_resources_case_sensitively():
    assert decide([policy(allow("S3:getobject"))]).allowed
    assert not decide([policy(allow(resource="arn:aws:s3:::Reports/*"))]).allowed


def test_wildcards_stay_within_an_arn_segment_and_brackets_are_literal():
    assert arn_matches("arn:aws:s3:::reports/*", BUCKET_OBJECT)
    assert arn_matches("arn:aws:iam::*:role/app", ROLE)
    assert arn_matches("arn:aws:logs:eu-west-1:1:log-group:/a/*", "arn:aws:logs:eu-west-1:1:log-group:/a/b:*")
    assert not arn_matches("arn:aws:s3:::[ab]", "arn:aws:s3:::a")
    assert arn_matches("arn:aws:s3:::repor?s/*", BUCKET_OBJECT)


def test_not_action_and_not_resource_apply_to_everything_else():
    power_user = policy({"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"})
    assert decide([power_user]).allowed
    assert not decide([power_user], action="iam:CreateRole", resource=ROLE).allowed
    except_secrets = policy({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secrets/*"})
    assert decide([except_secrets]).allowed
    assert not decide([except_secrets], resource="arn:aws:s3:::secrets/key").allowed


# --- conditions ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("operator", "context", "holds"), [
    # "If the key ... is not present in the request context, the values do not match and the condition is false."
    ("StringEquals", {}, False),
    ("StringLike", {}, False),
    # "If the policy condition requires that the key is not matched, such as StringNotLike ..., the condition is true."
    ("StringNotEquals", {}, True),
    ("StringNotLike", {}, True),
    ("ArnNotEquals", {}, True),
    # ...IfExists: "If the policy key is present ..., process the key as specified ... If not present, true."
    ("StringEqualsIfExists", {}, True),
    ("StringEqualsIfExists", {"k": "other"}, False),
    ("StringEqualsIfExists", {"k": "v1"}, True),
])
def test_a_key_missing_from_the_request(operator, context, holds):
    assert condition_holds(operator, "k", ["v1"], context) is holds


def test_several_values_of_one_key_are_ored_and_negated_operators_need_none_to_match():
    assert condition_holds("StringEquals", "k", ["a", "b"], {"k": "b"})
    assert not condition_holds("StringNotEquals", "k", ["a", "b"], {"k": "b"})
    assert condition_holds("StringNotEquals", "k", ["a", "b"], {"k": "c"})


def test_several_keys_and_operators_of_one_statement_are_anded():
    statement = allow(Condition={"StringEquals": {"a": "1", "b": "2"}, "Bool": {"aws:SecureTransport": "true"}})
    assert decide([policy(statement)], a="1", b="2", **{"aws:SecureTransport": "true"}).allowed
    assert not decide([policy(statement)], a="1", b="3", **{"aws:SecureTransport": "true"}).allowed
    assert not decide([policy(statement)], a="1", b="2", **{"aws:SecureTransport": "false"}).allowed


def test_null_checks_whether_the_key_is_there():
    assert condition_holds("Null", "k", ["true"], {})
    assert not condition_holds("Null", "k", ["true"], {"k": "x"})
    assert condition_holds("Null", "k", ["false"], {"k": "x"})


def test_set_operators_on_multivalued_keys():
    # ForAnyValue: at least one value of the request matches; false when the key is missing.
    assert condition_holds("ForAnyValue:StringLike", "tags", ["env*"], {"tags": ["owner", "environment"]})
    assert not condition_holds("ForAnyValue:StringLike", "tags", ["env*"], {})
    # ForAllValues: every value matches; true when the key is missing (the empty set).
    assert condition_holds("ForAllValues:StringEquals", "tags", ["a", "b"], {"tags": ["a"]})
    assert not condition_holds("ForAllValues:StringEquals", "tags", ["a", "b"], {"tags": ["a", "c"]})
    assert condition_holds("ForAllValues:StringEquals", "tags", ["a"], {})


def test_numeric_and_arn_operators():
    assert condition_holds("NumericLessThanEquals", "n", ["10"], {"n": "10"})
    assert not condition_holds("NumericGreaterThan", "n", ["10"], {"n": "3"})
    assert condition_holds("ArnLike", "aws:SourceArn", ["arn:aws:ecs:*:111122223333:*"],
                           {"aws:SourceArn": "arn:aws:ecs:eu-west-1:111122223333:cluster/c"})
    assert condition_holds("ArnNotEquals", "aws:PrincipalArn", [ROLE], {"aws:PrincipalArn": "arn:aws:iam::1:role/x"})


def test_an_operator_it_cannot_evaluate_fails_loudly():
    with pytest.raises(ValueError, match="IpAddress"):
        condition_holds("IpAddress", "aws:SourceIp", ["10.0.0.0/8"], {"aws:SourceIp": "10.1.1.1"})
