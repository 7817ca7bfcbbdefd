"""What IAM evaluates for one API call the emulated account receives: the action, the resource ARN and the request's
condition keys, plus the checks AWS makes on the caller's behalf for the same call (iam:PassRole for a role the
request hands to a service; kms:GenerateDataKey / kms:Decrypt for an S3 object in a bucket encrypted with a KMS key;
s3:GetObject on a copy's source).

The operation comes from the request itself: `X-Amz-Target` (JSON protocols), `Action=` (query protocols), the RPC v2
path, or, for REST APIs (S3, EFS, Scheduler, Route 53, CodeStar Notifications), the method and path matched against
botocore's own service model. Action names follow the IAM Service Authorization Reference, which names a few S3
operations differently (`ListObjectsV2` is `s3:ListBucket`, `HeadObject` is `s3:GetObject` ...). Resource ARNs are
built for the services whose policies here are scoped to resources; the others are evaluated against "*", as IAM does
for actions without resource-level permissions, and counted in the report (`resource_known`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

# Signing name -> (IAM service prefix, botocore service name for REST matching).
SERVICES = {"monitoring": "cloudwatch", "elasticfilesystem": "elasticfilesystem", "api.ecr": "ecr"}
REST_MODELS = {"s3": "s3", "elasticfilesystem": "efs", "scheduler": "scheduler", "route53": "route53",
               "codestar-notifications": "codestar-notifications"}

S3_ACTIONS = {
    "ListObjects": "ListBucket", "ListObjectsV2": "ListBucket", "HeadBucket": "ListBucket",
    "ListObjectVersions": "ListBucketVersions", "HeadObject": "GetObject", "CopyObject": "PutObject",
    "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload", "DeleteObjects": "DeleteObject", "ListBuckets": "ListAllMyBuckets",
    "GetBucketCors": "GetBucketCORS", "PutBucketCors": "PutBucketCORS", "DeleteBucketCors": "PutBucketCORS",
    "GetBucketEncryption": "GetEncryptionConfiguration", "PutBucketEncryption": "PutEncryptionConfiguration",
    "DeleteBucketEncryption": "PutEncryptionConfiguration",
    "GetBucketLifecycleConfiguration": "GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "PutLifecycleConfiguration",
    "GetBucketNotificationConfiguration": "GetBucketNotification",
    "PutBucketNotificationConfiguration": "PutBucketNotification",
    "GetPublicAccessBlock": "GetBucketPublicAccessBlock", "PutPublicAccessBlock": "PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "PutBucketPublicAccessBlock", "DeleteBucketTagging": "PutBucketTagging",
    "DeleteBucketOwnershipControls": "PutBucketOwnershipControls", "DeleteBucketPolicy": "DeleteBucketPolicy",
    "GetBucketAccelerateConfiguration": "GetAccelerateConfiguration",
    "GetBucketReplication": "GetReplicationConfiguration", "GetObjectLockConfiguration":
        "GetBucketObjectLockConfiguration", "GetBucketWebsite": "GetBucketWebsite",
    "GetBucketAnalyticsConfiguration": "GetAnalyticsConfiguration",
    "GetBucketInventoryConfiguration": "GetInventoryConfiguration",
    "GetBucketMetricsConfiguration": "GetMetricsConfiguration",
    "GetBucketIntelligentTieringConfiguration": "GetIntelligentTieringConfiguration",
}
OBJECT_ACTIONS = {"GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload", "GetObjectTagging",
                  "PutObjectTagging", "GetObjectAcl", "PutObjectAcl", "GetObjectVersion", "DeleteObjectVersion",
                  "GetObjectAttributes", "RestoreObject", "ListMultipartUploadParts"}

# Where a request hands a role to a service: (IAM action) -> [(parameter path, service the role is passed to)].
PASSED_ROLES: dict[str, list[tuple[str, str]]] = {
    "ecs:RegisterTaskDefinition": [("taskRoleArn", "ecs-tasks.amazonaws.com"),
                                   ("executionRoleArn", "ecs-tasks.amazonaws.com")],
    "ecs:CreateService": [("role", "ecs.amazonaws.com"),
                          ("loadBalancers[].advancedConfiguration.roleArn", "ecs.amazonaws.com")],
    "ecs:UpdateService": [("loadBalancers[].advancedConfiguration.roleArn", "ecs.amazonaws.com")],
    "events:PutTargets": [("Targets[].RoleArn", "events.amazonaws.com")],
    "scheduler:CreateSchedule": [("Target.RoleArn", "scheduler.amazonaws.com")],
    "scheduler:UpdateSchedule": [("Target.RoleArn", "scheduler.amazonaws.com")],
    "ec2:CreateFlowLogs": [("DeliverLogsPermissionArn", "vpc-flow-logs.amazonaws.com")],
    "codebuild:CreateProject": [("serviceRole", "codebuild.amazonaws.com")],
    "codebuild:UpdateProject": [("serviceRole", "codebuild.amazonaws.com")],
    "codepipeline:CreatePipeline": [("pipeline.roleArn", "codepipeline.amazonaws.com")],
    "codepipeline:UpdatePipeline": [("pipeline.roleArn", "codepipeline.amazonaws.com")],
}


class Account(Protocol):
    """What the mapping needs to know of the account's current state (the emulated account, or a test's fake)."""

    account: str

    def role_arn(self, name: str) -> str: ...
    def role_boundary(self, name: str) -> str | None: ...
    def role_tags(self, name: str) -> dict[str, str]: ...
    def kms_key_arn(self, key_id: str, region: str) -> str: ...
    def bucket_kms_key(self, bucket: str) -> str | None: ...
    def object_kms_key(self, bucket: str, key: str) -> str | None: ...
    def table_hash_key(self, table: str, region: str) -> str | None: ...
    def secret_arn(self, secret_id: str, region: str) -> str: ...
    def secret_kms_key(self, secret_id: str, region: str) -> str | None: ...


@dataclass
class Call:
    """One API call as it reached the account: signing service, region, operation and its parameters."""

    service: str
    region: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    bucket: str = ""
    key: str = ""
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One authorization IAM makes for a call: `implied` names why AWS checks it beyond the call's own action."""

    action: str
    resource: str
    context: dict[str, Any]
    implied: str = ""
    resource_known: bool = True


# --- reading the call -----------------------------------------------------------------------------------------

@cache
def _rest_operations(model_name: str) -> list[tuple[str, re.Pattern[str], tuple[str, ...], str]]:
    import botocore.session

    model = botocore.session.get_session().get_service_model(model_name)
    operations = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = http["requestUri"].partition("?")
        expression = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
        expression = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", expression)
        required = tuple(part.split("=")[0] for part in query.split("&") if part)
        operations.append((http["method"], re.compile(expression + "/?"), required, name))
    # The most specific first: more required query keys, then longer literal paths.
    operations.sort(key=lambda op: (-len(op[2]), -len(op[1].pattern)))
    return operations


def rest_operation(service: str, method: str, path: str, query: dict[str, str]) -> tuple[str, dict[str, str]]:
    for op_method, pattern, required, name in _rest_operations(REST_MODELS[service]):
        if op_method != method:
            continue
        match = pattern.fullmatch(path)
        if match and all(key in query for key in required):
            values = {k: unquote(v) for k, v in match.groupdict().items()}
            if required == ("x-id",) and query.get("x-id") != name:
                continue
            return name, values
    return f"{method} {path}", {}


def _query_params(body: bytes, query_string: str) -> dict[str, Any]:
    values = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
    values.update({k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()})
    return values


def read_call(service: str, region: str, method: str, path: str, query_string: str, headers: dict[str, str],
              body: bytes) -> Call:
    """The call in a request. `headers` are lower-case."""
    query = {k: v[0] for k, v in parse_qs(query_string, keep_blank_values=True).items()}
    target = headers.get("x-amz-target")
    if target:
        params = json.loads(body or b"{}") if body.strip() else {}
        return Call(service, region, target.split(".")[-1], params if isinstance(params, dict) else {})
    rpc = re.fullmatch(r"/service/[^/]+/operation/([A-Za-z]+)", path)
    if rpc:
        return Call(service, region, rpc.group(1))
    if service in REST_MODELS:
        operation, values = rest_operation(service, method, path, query)
        call = Call(service, region, operation, dict(values), values.get("Bucket", ""), values.get("Key", ""), query)
        if body and headers.get("content-type", "").startswith("application/json"):
            try:
                call.params.update(json.loads(body))
            except ValueError:
                pass
        if operation == "DeleteObjects" and body:
            call.params["Keys"] = [element.text or "" for element in ElementTree.fromstring(body).iter()
                                   if element.tag.endswith("}Key") or element.tag == "Key"]
        if operation == "CopyObject":
            call.params["CopySource"] = unquote(headers.get("x-amz-copy-source", ""))
        for header in ("x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"):
            if header in headers:
                call.params[header] = headers[header]
        return call
    params = _query_params(body, query_string)
    return Call(service, region, params.pop("Action", "?"), params)


# --- from the call to IAM's checks ------------------------------------------------------------------------------

def _values_at(params: Any, path: str) -> list[Any]:
    """`a.b[].c` in a JSON request, or its query-protocol flattening (`A.B.member.1.C`)."""
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    head = head.removesuffix("[]")
    if isinstance(params, dict) and head in params:
        items = params[head] if many and isinstance(params[head], list) else [params[head]]
        return [v for item in items for v in (_values_at(item, rest) if rest else [item]) if v]
    if isinstance(params, dict) and not rest:  # query protocol, flat keys
        return [v for k, v in params.items() if k == head or re.fullmatch(rf"{re.escape(head)}\.member\.\d+", k)]
    return []


def request_tags(params: dict[str, Any]) -> dict[str, str]:
    """Tags a request sets (`aws:RequestTag/<key>`), in the shapes the APIs use: a list of Key/Value pairs (either
    capitalisation), a map, or the query protocol's `Tags.member.N.Key`."""
    tags: dict[str, str] = {}
    for name in ("Tags", "tags", "TagList"):
        value = params.get(name)
        if isinstance(value, dict):
            tags.update({str(k): str(v) for k, v in value.items()})
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    key = item.get("Key", item.get("key"))
                    if key is not None:
                        tags[str(key)] = str(item.get("Value", item.get("value", "")))
    flat: dict[str, dict[str, str]] = {}
    for key, value in params.items():
        match = re.fullmatch(r"(?:Tags|TagSpecification\.\d+\.Tag)\.(?:member\.)?(\d+)\.(Key|Value)", key)
        if match:
            flat.setdefault(match.group(1), {})[match.group(2)] = value
    tags.update({item["Key"]: item.get("Value", "") for item in flat.values() if "Key" in item})
    return tags


def _arn(call: Call, account: Account, service: str, resource: str, region: bool = True) -> str:
    return f"arn:aws:{service}:{call.region if region else ''}:{account.account if region else ''}:{resource}"


def _resource(call: Call, account: Account, prefix: str, action: str) -> str | None:
    p = call.params
    name = action.split(":", 1)[1]
    acct = account.account
    if prefix == "s3":
        if not call.bucket:
            return "*"
        if name in OBJECT_ACTIONS:
            return f"arn:aws:s3:::{call.bucket}/{call.key}"
        return f"arn:aws:s3:::{call.bucket}"
    if prefix == "dynamodb" and "TableName" in p:
        return _arn(call, account, "dynamodb", f"table/{p['TableName']}")
    if prefix == "iam":
        if "RoleName" in p:
            return account.role_arn(p["RoleName"])
        if "PolicyArn" in p:
            return p["PolicyArn"]
        if "PolicyName" in p and name in ("CreatePolicy",):
            return f"arn:aws:iam::{acct}:policy{p.get('Path', '/')}{p['PolicyName']}"
        return "*"
    if prefix == "sts":
        return p.get("RoleArn", "*")
    if prefix == "kms" and "KeyId" in p:
        return account.kms_key_arn(p["KeyId"], call.region)
    if prefix == "logs":
        group = p.get("logGroupName") or p.get("logGroupIdentifier")
        if group and group.startswith("arn:"):
            return group.removesuffix(":*")
        if group:
            stream = p.get("logStreamName")
            return _arn(call, account, "logs", f"log-group:{group}" + (f":log-stream:{stream}" if stream else ""))
        return p.get("resourceArn", "*")
    if prefix == "ecr" and "repositoryName" in p:
        return _arn(call, account, "ecr", f"repository/{p['repositoryName']}")
    if prefix == "sqs" and (p.get("QueueUrl") or p.get("QueueName")):
        return _arn(call, account, "sqs", (p.get("QueueUrl") or p["QueueName"]).rstrip("/").rsplit("/", 1)[-1])
    if prefix == "sns" and "TopicArn" in p:
        return p["TopicArn"]
    if prefix == "secretsmanager" and "SecretId" in p:
        return account.secret_arn(p["SecretId"], call.region)
    if prefix == "ecs":
        cluster = p.get("cluster", "default").rsplit("/", 1)[-1]
        if "service" in p:
            return _arn(call, account, "ecs", f"service/{cluster}/{p['service'].rsplit('/', 1)[-1]}")
        if p.get("services"):
            return _arn(call, account, "ecs", f"service/{cluster}/{p['services'][0].rsplit('/', 1)[-1]}")
        if name in ("RunTask", "StartTask") and "taskDefinition" in p:
            return _task_definition_arn(call, account, p["taskDefinition"])
        if name == "DescribeTaskDefinition" and "taskDefinition" in p:
            return _task_definition_arn(call, account, p["taskDefinition"])
        # DescribeTasks and StopTask are authorized on the task (`task/<cluster>/<id>`), as the reference says.
        task = p.get("task") or (p.get("tasks") or [None])[0]
        if name in ("DescribeTasks", "StopTask") and task:
            return task if task.startswith("arn:") and "/" in task.split(":task/", 1)[-1] else _arn(
                call, account, "ecs", f"task/{cluster}/{task.rsplit('/', 1)[-1]}")
        if "cluster" in p and name in ("DescribeClusters", "ListServices", "ListTasks", "DeleteCluster"):
            return _arn(call, account, "ecs", f"cluster/{cluster}")
        return "*"
    if prefix == "elasticfilesystem" and "FileSystemId" in p:
        return _arn(call, account, "elasticfilesystem", f"file-system/{p['FileSystemId']}")
    if prefix == "codebuild":
        names = p.get("names") or ([p["projectName"]] if "projectName" in p else [])
        return _arn(call, account, "codebuild", f"project/{names[0]}") if names else "*"
    if prefix == "codepipeline" and ("name" in p or "pipelineName" in p):
        return _arn(call, account, "codepipeline", p.get("name") or p["pipelineName"])
    if prefix == "events" and ("Rule" in p or "Name" in p):
        return _arn(call, account, "events", f"rule/{p.get('Rule') or p['Name']}")
    if prefix == "scheduler" and "Name" in p:
        return _arn(call, account, "scheduler", f"schedule/{p.get('GroupName', 'default')}/{p['Name']}")
    return None


def _task_definition_arn(call: Call, account: Account, value: str) -> str:
    if value.startswith("arn:"):
        return value
    return _arn(call, account, "ecs", f"task-definition/{value}")


def iam_action(call: Call) -> str:
    prefix = SERVICES.get(call.service, call.service)
    if prefix == "s3":
        name = S3_ACTIONS.get(call.operation, call.operation)
        if call.operation in ("GetObject", "HeadObject") and "versionId" in call.query:
            name = "GetObjectVersion"
        if call.operation == "DeleteObject" and "versionId" in call.query:
            name = "DeleteObjectVersion"
        return f"s3:{name}"
    if prefix == "codestar-connections" and call.operation:
        return f"codestar-connections:{call.operation}"
    return f"{prefix}:{call.operation}"


def checks(call: Call, account: Account) -> list[Check]:
    """Every authorization IAM makes for the call, the call's own first."""
    action = iam_action(call)
    prefix = action.split(":", 1)[0]
    resource = _resource(call, account, prefix, action)
    context: dict[str, Any] = {"aws:RequestedRegion": call.region}
    tags = request_tags(call.params)
    if tags:
        context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
        context["aws:TagKeys"] = sorted(tags)
    p = call.params
    if prefix == "iam" and "RoleName" in p:
        if action in ("iam:CreateRole", "iam:PutRolePermissionsBoundary"):
            if p.get("PermissionsBoundary"):
                context["iam:PermissionsBoundary"] = p["PermissionsBoundary"]
        else:
            boundary = account.role_boundary(p["RoleName"])
            if boundary:
                context["iam:PermissionsBoundary"] = boundary
            context.update({f"aws:ResourceTag/{k}": v for k, v in account.role_tags(p["RoleName"]).items()})
        if "PolicyArn" in p:
            context["iam:PolicyARN"] = p["PolicyArn"]
    if prefix == "s3" and call.operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
        if "prefix" in call.query:
            context["s3:prefix"] = call.query["prefix"]
    if action == "cloudwatch:PutMetricData" and "Namespace" in p:
        context["cloudwatch:namespace"] = p["Namespace"]  # how a role is held to its own metrics
    if prefix == "dynamodb" and action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
                                           "dynamodb:UpdateItem"):
        hash_key = account.table_hash_key(p.get("TableName", ""), call.region)
        item = p.get("Key") or p.get("Item") or {}
        value = item.get(hash_key or "", {})
        if isinstance(value, dict) and value:
            context["dynamodb:LeadingKeys"] = [str(next(iter(value.values())))]
    if prefix == "ecs" and "cluster" in p:
        context["ecs:cluster"] = _arn(call, account, "ecs", f"cluster/{p['cluster'].rsplit('/', 1)[-1]}")
    found = [Check(action, resource or "*", context, resource_known=resource is not None)]
    found.extend(_implied(call, account, action, context))
    return found


SECRET_KEY_USE = {"secretsmanager:GetSecretValue": "kms:Decrypt",
                  "secretsmanager:PutSecretValue": "kms:GenerateDataKey"}
"""What Secrets Manager asks KMS, as the caller, when a secret has a customer managed key."""


def _implied(call: Call, account: Account, action: str, context: dict[str, Any]) -> list[Check]:
    base = {"aws:RequestedRegion": call.region}
    implied = []
    for path, service in PASSED_ROLES.get(action, []):
        for role_arn in _values_at(call.params, path):
            implied.append(Check("iam:PassRole", str(role_arn), {**base, "iam:PassedToService": service},
                                 implied=f"{action} passes {role_arn} to {service}"))
    if action == "s3:PutObject" and call.operation == "CopyObject" and call.params.get("CopySource"):
        source = call.params["CopySource"].lstrip("/").split("?", 1)[0]
        implied.append(Check("s3:GetObject", f"arn:aws:s3:::{source}", base, implied="CopyObject reads its source"))
        bucket, _, key = source.partition("/")
        key_arn = account.object_kms_key(bucket, key)
        if key_arn:
            implied.append(Check("kms:Decrypt", key_arn, {**base, "kms:ViaService": f"s3.{call.region}.amazonaws.com"},
                                 implied=f"s3:CopyObject of an object encrypted with {key_arn}"))
    secret_use = SECRET_KEY_USE.get(action)
    if secret_use and call.params.get("SecretId"):
        # Secrets Manager encrypts and decrypts with a customer managed key as the caller (kms:ViaService).
        key_arn = account.secret_kms_key(call.params["SecretId"], call.region)
        if key_arn:
            secret = account.secret_arn(call.params["SecretId"], call.region)
            implied.append(Check(secret_use, account.kms_key_arn(key_arn, call.region), {
                **base, "kms:ViaService": f"secretsmanager.{call.region}.amazonaws.com",
                "kms:EncryptionContext:SecretARN": secret}, implied=f"{action} of a secret encrypted with a KMS key"))
    if call.service == "s3" and call.bucket and call.key:
        via = {**base, "kms:ViaService": f"s3.{call.region}.amazonaws.com"}
        if call.operation in ("PutObject", "CopyObject", "CreateMultipartUpload"):
            key_arn = call.params.get("x-amz-server-side-encryption-aws-kms-key-id") or account.bucket_kms_key(
                call.bucket)
            if key_arn and call.params.get("x-amz-server-side-encryption", "aws:kms") == "aws:kms":
                implied.append(Check("kms:GenerateDataKey", account.kms_key_arn(key_arn, call.region), via,
                                     implied=f"s3:{call.operation} into a bucket encrypted with a KMS key"))
        elif call.operation in ("GetObject", "HeadObject"):
            key_arn = account.object_kms_key(call.bucket, call.key)
            if key_arn and call.operation == "GetObject":
                implied.append(Check("kms:Decrypt", account.kms_key_arn(key_arn, call.region), via,
                                     implied="s3:GetObject of an object encrypted with a KMS key"))
    return implied
