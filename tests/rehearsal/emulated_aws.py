"""The emulated AWS account: moto's server, with the rehearsal's shims and the few services moto lacks.

`python -m tests.rehearsal.emulated_aws --port N` serves on 127.0.0.1:N until killed. Beside moto it serves:
- CodeStar Connections and CodeStar Notifications (not in moto 5.2.5): create, read, tag and delete, all the
  provider needs; a new connection is PENDING, as in AWS, until someone authorizes it;
- `/_rehearsal/ecr-blobs/<digest>`: layer downloads (see the ecr-layer-downloads shim);
- `/_rehearsal/ecs-service`: the rehearsal's ECS agent reports a service's deployments and task counts, which is
  what ECS (and Terraform's wait for steady state, and the deploy step) then sees;
- `/_rehearsal/ecs-task`: the agent reports a task a client started with RunTask (running, or stopped with its exit
  code); moto is told never to move a task's status on its own;
- `/_rehearsal/assume`: a service (CodeBuild, ECS, EventBridge, Scheduler) assumes a role, if its trust policy lets it;
- `/_rehearsal/authorize`: checks AWS makes inside a service on a role's behalf (an EFS mount, a rule's RunTask);
- `/_rehearsal/authorization`: the decisions so far, per principal; `/_rehearsal/policies`: every role's policies.
moto's backends are not thread-safe, so every call is served under one lock; an SQS long poll waits outside it, in
short receives (moto would hold it for the whole wait). Every other call is authorized before it is served
(tests/rehearsal/authorization.py): with REHEARSAL_AUTHORIZATION=enforce (the default) a denied call is answered
AccessDenied; with `record` it is served and only recorded. REHEARSAL_AUTHORIZATION_LOG names the JSON-lines file of
every decision.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import sys
import threading
import uuid
from typing import Any

from tests.rehearsal import moto_shims
from tests.rehearsal.authorization import Authorizer, Record
from tests.rehearsal.iam_requests import Check, checks, read_call
from tests.support.iam_evaluation import Caller

ACCOUNT = "123456789012"
CALL_LOG_LOCK = threading.Lock()
BACKEND_LOCK = threading.Lock()
SERVICE_OF_REQUEST = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")
ACCESS_KEY_OF_REQUEST = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
AUTHORIZATION_SETTING = "REHEARSAL_AUTHORIZATION"
AUTHORIZATION_LOG_SETTING = "REHEARSAL_AUTHORIZATION_LOG"


def _repeated_lock_write(environ: dict[str, Any]) -> bool:
    """Whether a request is Terraform's state lock PutItem repeated by its SDK after a response this emulator sent
    was lost (seen once: under load the first write landed, its answer never arrived, and the retry found the lock
    held by itself, failing a teardown). The very same item, already stored, is answered as written; a lock another
    process holds (a different item) still fails, as on AWS. The emulator's safeguard, not moto's or the product's."""
    if environ.get("HTTP_X_AMZ_TARGET") != "DynamoDB_20120810.PutItem":
        return False
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    request = json.loads(body or b"{}")
    item = request.get("Item", {})
    if "attribute_not_exists(LockID)" not in request.get("ConditionExpression", "") or "Info" not in item:
        return False
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    match = SERVICE_OF_REQUEST.search(environ.get("HTTP_AUTHORIZATION", ""))
    region = match.group(1) if match else "us-east-1"
    table = dynamodb_backends[ACCOUNT][region].tables.get(request.get("TableName", ""))
    stored = table.get_item(DynamoType(item["LockID"])) if table is not None and "LockID" in item else None
    if stored is None or stored.to_json()["Attributes"] != item:
        return False
    print(f"REPEATED LOCK WRITE answered as written: {item['LockID'].get('S')}", flush=True)
    return True


def _json(start_response: Any, body: Any, status: str = "200 OK") -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
    return [data]


class CodeStar:
    """Connections and notification rules, in memory."""

    def __init__(self) -> None:
        self.connections: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def connections_call(self, region: str, action: str, body: dict[str, Any]) -> tuple[str, Any]:
        if action == "CreateConnection":
            arn = f"arn:aws:codestar-connections:{region}:{ACCOUNT}:connection/{uuid.uuid4()}"
            self.connections[arn] = {"ConnectionName": body["ConnectionName"], "ConnectionArn": arn,
                                     "ProviderType": body.get("ProviderType", "GitHub"), "OwnerAccountId": ACCOUNT,
                                     "ConnectionStatus": "PENDING"}
            self.tags[arn] = {t["Key"]: t["Value"] for t in body.get("Tags", [])}
            return "200 OK", {"ConnectionArn": arn, "Tags": body.get("Tags", [])}
        if action == "GetConnection":
            if body["ConnectionArn"] not in self.connections:
                return "400 Bad Request", {"__type": "ResourceNotFoundException", "message": "no such connection"}
            return "200 OK", {"Connection": self.connections[body["ConnectionArn"]]}
        if action == "ListConnections":
            return "200 OK", {"Connections": list(self.connections.values())}
        if action == "DeleteConnection":
            self.connections.pop(body["ConnectionArn"], None)
            return "200 OK", {}
        return self._tags_call(action, body.get("ResourceArn", ""), body)

    def _tags_call(self, action: str, arn: str, body: dict[str, Any]) -> tuple[str, Any]:
        tags = self.tags.setdefault(arn, {})
        if action == "ListTagsForResource":
            return "200 OK", {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        if action == "TagResource":
            new = body.get("Tags", [])
            tags.update({t["Key"]: t["Value"] for t in new} if isinstance(new, list) else new)
            return "200 OK", {}
        if action == "UntagResource":
            for key in body.get("TagKeys", []):
                tags.pop(key, None)
            return "200 OK", {}
        return "400 Bad Request", {"__type": "InvalidAction", "message": f"{action} is not emulated"}

    def notifications_call(self, region: str, path: str, body: dict[str, Any]) -> tuple[str, Any]:
        action = path.strip("/").split("/")[0]
        if action == "createNotificationRule":
            arn = f"arn:aws:codestar-notifications:{region}:{ACCOUNT}:notificationrule/{uuid.uuid4().hex}"
            self.rules[arn] = {**body, "Arn": arn, "Status": body.get("Status", "ENABLED"),
                               "Targets": [{**t, "TargetStatus": "ACTIVE"} for t in body.get("Targets", [])]}
            self.tags[arn] = dict(body.get("Tags", {}))
            return "200 OK", {"Arn": arn}
        if action == "describeNotificationRule":
            rule = self.rules.get(body["Arn"])
            if rule is None:
                return "404 Not Found", {"__type": "ResourceNotFoundException", "Message": "no such rule"}
            return "200 OK", {**{k: v for k, v in rule.items() if k != "ClientRequestToken"},
                              "EventTypes": [{"EventTypeId": e} for e in rule.get("EventTypeIds", [])],
                              "Tags": self.tags.get(body["Arn"], {})}
        if action == "updateNotificationRule":
            self.rules[body["Arn"]].update(body)
            return "200 OK", {}
        if action == "deleteNotificationRule":
            self.rules.pop(body["Arn"], None)
            return "200 OK", {"Arn": body["Arn"]}
        if action == "deleteTarget":
            for rule in self.rules.values():
                rule["Targets"] = [t for t in rule["Targets"] if t.get("TargetAddress") != body["TargetAddress"]]
            return "200 OK", {}
        if action == "listTagsForResource":
            return "200 OK", {"Tags": self.tags.get(body["Arn"], {})}
        if action == "tagResource":
            self.tags.setdefault(body["Arn"], {}).update(body.get("Tags", {}))
            return "200 OK", {"Tags": self.tags[body["Arn"]]}
        if action.startswith("untagResource"):
            return "200 OK", {}
        return "400 Bad Request", {"__type": "InvalidAction", "Message": f"{action} is not emulated"}


def set_service(report: dict[str, Any]) -> dict[str, Any]:
    """What ECS shows of a service, as the rehearsal's ECS agent runs it (tests/rehearsal/ecs_deployments.py): its
    deployments, running and pending counts, and its task definition (which a rollback moves back); or, for a
    deleted (DRAINING) service whose tasks are all stopping, `{"status": "INACTIVE"}`."""
    from moto.ecs.models import ecs_backends

    cluster, service = report["cluster"], report["service"]
    for region_backends in ecs_backends.values():
        for backend in region_backends.values():
            for key, candidate in backend.services.items():
                if key.split(":")[-1] == service and cluster in (candidate.cluster_name, candidate.cluster_arn):
                    if "status" in report:  # a deleted service whose tasks are all stopping: INACTIVE
                        candidate.status = report["status"]
                        candidate.running_count = candidate.pending_count = 0
                        return {"service": service}
                    candidate.running_count = report["running"]
                    candidate.pending_count = report["pending"]
                    candidate.deployments = [{**deployment, "launchType": candidate.launch_type,
                                              "createdAt": candidate.deployments[0]["createdAt"]
                                              if candidate.deployments else None}
                                             for deployment in report["deployments"]]
                    candidate.task_definition = report["taskDefinition"]
                    candidate.events = report.get("events", [])
                    return {"service": service}
    return {"error": f"no service {service} in cluster {cluster}"}


def set_task(report: dict[str, Any]) -> dict[str, Any]:
    """What ECS shows of a task a client started with RunTask, as the rehearsal's ECS agent runs it: RUNNING while
    its container runs; STOPPED with the container's exit code (or, when it never started, the reason)."""
    from moto.ecs.models import ecs_backends

    for region_backends in ecs_backends.values():
        for backend in region_backends.values():
            for tasks in backend.tasks.values():
                task = tasks.get(report["taskArn"])
                if task is None:
                    continue
                task.status = report["lastStatus"]
                if report["lastStatus"] == "STOPPED":
                    task.desired_status = "STOPPED"
                    task.stopped_reason = report.get("stoppedReason", "")
                    task.containers[0].exitCode = report.get("exitCode")
                    task.containers[0].last_status = "STOPPED"
                    _release_interfaces(task)
                return {"task": report["taskArn"]}
    return {"error": f"no task {report['taskArn']}"}


def _release_interfaces(task: Any) -> None:
    """ECS deletes a stopped task's network interface (otherwise its subnet and security group could not be
    deleted)."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[task._account_id][task.region_name]
    for attachment in task.attachments:
        for detail in attachment.get("details", []):
            if detail["name"] == "networkInterfaceId" and detail["value"] in backend.enis:
                backend.delete_network_interface(detail["value"])
        attachment["status"] = "DELETED"


def keep_tasks_as_the_agent_reports_them() -> None:
    """moto moves a task one status further on every DescribeTasks (RUNNING to STOPPED in four calls), whatever
    its container does; ECS stops a task when its essential container exits. moto's state manager is told to
    never move a task on its own: the rehearsal's ECS agent reports its status (set_task)."""
    from moto.moto_api import state_manager

    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 2**62})


def _call_name(environ: dict[str, Any]) -> str:
    """`service Action` of a request, for the call log (the body is read and put back for query-protocol calls)."""
    match = SERVICE_OF_REQUEST.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(2) if match else "-"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service} {target.split('.')[-1]}"
    query = environ.get("QUERY_STRING", "")
    action = re.search(r"(?:^|&)Action=([A-Za-z]+)", query)
    if action is None and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        action = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
        return f"{service} {action.group(1).decode() if action else '?'}"
    if action is not None:
        return f"{service} {action.group(1)}"
    return f"{service} {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}?{query}"[:160]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, put back for whoever reads it next."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def access_denied(start_response: Any, environ: dict[str, Any], denial: Record, caller_arn: str) -> list[bytes]:
    """AccessDenied in the shape the service's protocol uses, with IAM's message."""
    message = (f"User: {caller_arn} is not authorized to perform: {denial.action} on resource: {denial.resource}"
               f"{' (' + denial.implied + ')' if denial.implied else ''} because {denial.reason}")
    if environ.get("HTTP_X_AMZ_TARGET"):
        return _json(start_response, {"__type": "AccessDeniedException", "message": message}, "400 Bad Request")
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    match = SERVICE_OF_REQUEST.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(2) if match else ""
    if service in ("elasticfilesystem", "scheduler", "codestar-notifications"):
        data = json.dumps({"message": message}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                         ("x-amzn-ErrorType", "AccessDeniedException")])
        return [data]
    if service in ("s3", "route53"):
        data = f"<Error><Code>AccessDenied</Code><Message>{escaped}</Message></Error>".encode()
    else:
        data = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escaped}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
    start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]


def make_authorizer() -> Authorizer:
    import os
    from pathlib import Path

    mode = os.environ.get(AUTHORIZATION_SETTING, "enforce")
    if mode not in ("enforce", "record"):
        raise SystemExit(f"{AUTHORIZATION_SETTING}={mode}: use enforce or record")
    log = os.environ.get(AUTHORIZATION_LOG_SETTING)
    return Authorizer(ACCOUNT, Path(log) if log else None, enforce=mode == "enforce")


SQS_RECEIVE = "AmazonSQS.ReceiveMessage"
LONG_POLL_INTERVAL_SECONDS = 0.5


def _sqs_long_poll(environ: dict[str, Any]) -> tuple[dict[str, Any], float] | None:
    """(the request, its wait) for an SQS ReceiveMessage that long-polls (its WaitTimeSeconds, else the queue's
    ReceiveMessageWaitTimeSeconds); None for any other call. moto 5.2.5 waits for messages inside the call, which
    here would hold the backend lock, and so the whole account, for up to 20 s per poll."""
    if environ.get("HTTP_X_AMZ_TARGET") != SQS_RECEIVE:
        return None
    body = json.loads(_read_body(environ) or b"{}")
    wait = body.get("WaitTimeSeconds")
    if wait is None:
        from moto.sqs.models import sqs_backends

        name = str(body.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        with BACKEND_LOCK:
            queues = [backend.queues[name] for account in sqs_backends.values() for backend in account.values()
                      if name in backend.queues]
        wait = int(getattr(queues[0], "receive_message_wait_time_seconds", 0) or 0) if queues else 0
    return (body, float(wait)) if float(wait) > 0 else None


def _long_poll(moto_app: Any, environ: dict[str, Any], start_response: Any, body: dict[str, Any],
               wait: float) -> list[bytes]:
    """SQS long polling as SQS does it (answer as soon as a message is there, or empty after the wait), made of
    short receives, each under the backend lock, with the lock free in between."""
    import time

    request = json.dumps({**body, "WaitTimeSeconds": 0}).encode()
    deadline = time.monotonic() + wait
    answer: dict[str, Any] = {}

    def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        answer.update(status=status, headers=headers)

    while True:

        call = {**environ, "wsgi.input": io.BytesIO(request), "CONTENT_LENGTH": str(len(request))}
        with BACKEND_LOCK:
            content = b"".join(moto_app(call, keep))
        done = not answer["status"].startswith("200") or time.monotonic() >= deadline
        if done or json.loads(content or b"{}").get("Messages"):
            headers = [(k, v) for k, v in answer["headers"] if k.lower() != "content-length"]
            start_response(answer["status"], [*headers, ("Content-Length", str(len(content)))])
            return [content]
        time.sleep(LONG_POLL_INTERVAL_SECONDS)


def make_app(authorizer: Authorizer | None = None) -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    moto_app = DomainDispatcherApplication(create_backend_app)
    codestar = CodeStar()
    authorizer = authorizer or make_authorizer()

    def rehearsal_call(path: str, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = json.loads(_read_body(environ) or b"{}")
        with BACKEND_LOCK:
            if path == "/_rehearsal/assume":
                outcome = authorizer.assume_as_service(body["role_arn"], body["service"], body.get("source_arn", ""))
                if isinstance(outcome, Record):
                    return _json(start_response, {"denied": outcome.describe()}, "403 Forbidden")
                return _json(start_response, outcome)
            if path == "/_rehearsal/authorize":
                # A role session's key, or a service principal acting on its own (S3 sending an event to a queue).
                caller = (Caller(authorizer.store.account, service=body["service"]) if body.get("service")
                          else authorizer.caller(body["access_key"]))
                if caller is None:
                    return _json(start_response, {"denied": "unknown access key"}, "403 Forbidden")
                denial = authorizer.authorize(caller, [Check(c["action"], c["resource"], c.get("context", {}),
                                                             implied=c["implied"]) for c in body["checks"]])
                return _json(start_response, {"denied": denial.describe() if denial else None})
            if path == "/_rehearsal/policies":
                return _json(start_response, authorizer.store.snapshot())
            return _json(start_response, authorizer.log.report())

    def authorized(environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
        """None when the call may be served; else the AccessDenied answer (already started)."""
        match = ACCESS_KEY_OF_REQUEST.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match is None:
            return None
        access_key, region, service = match.groups()
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        body = _read_body(environ)
        with BACKEND_LOCK:
            caller = authorizer.caller(access_key)
            if caller is None:
                data = json.dumps({"__type": "UnrecognizedClientException",
                                   "message": f"The security token included in the request is invalid "
                                              f"({access_key})"}).encode()
                start_response("403 Forbidden", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(data)))])
                return [data]
            call = read_call(service, region, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""),
                             environ.get("QUERY_STRING", ""), headers, body)
            denial = authorizer.authorize(caller, checks(call, authorizer.requests_account))
        if denial is None or not authorizer.enforce:
            return None
        return access_denied(start_response, environ, denial, caller.session_arn if not isinstance(caller, str)
                             else caller)

    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        """Every call as `CALL <service> <Action> <status>`: a failure names the emulated API call."""
        name = _call_name(environ)

        def start(status: str, headers: Any, *args: Any) -> Any:
            with CALL_LOG_LOCK:  # one line per call, whichever of the server's threads answers
                sys.stdout.write(f"CALL {name} {status.split()[0]}\n")
                sys.stdout.flush()
            return start_response(status, headers, *args)

        return app(environ, start)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(moto_shims.BLOB_PATH):
            blob = moto_shims.BLOBS.get(path[len(moto_shims.BLOB_PATH):])
            if blob is None:
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
            start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                      ("Content-Length", str(len(blob)))])
            return [blob]
        if path == "/_rehearsal/ecs-service":
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            with BACKEND_LOCK:
                return _json(start_response, set_service(body))
        if path == "/_rehearsal/ecs-task":
            body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
            with BACKEND_LOCK:
                return _json(start_response, set_task(body))
        if path == "/_rehearsal/ready":
            return _json(start_response, {"ready": True})
        if path in ("/_rehearsal/assume", "/_rehearsal/authorize", "/_rehearsal/authorization", "/_rehearsal/policies"):
            return rehearsal_call(path, environ, start_response)
        refused = authorized(environ, start_response)
        if refused is not None:
            return refused
        match = SERVICE_OF_REQUEST.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match and match.group(2) in ("codestar-connections", "codeconnections", "codestar-notifications"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            region, service = match.groups()
            if service == "codestar-notifications":
                status, answer = codestar.notifications_call(region, path, body)
            else:
                action = environ.get("HTTP_X_AMZ_TARGET", ".").split(".")[-1]
                status, answer = codestar.connections_call(region, action, body)
            return _json(start_response, answer, status)
        poll = _sqs_long_poll(environ)
        if poll is not None:
            return _long_poll(moto_app, environ, start_response, *poll)
        with BACKEND_LOCK:  # moto's backends are not thread-safe: concurrent calls corrupted them (duplicate rules)
            if _repeated_lock_write(environ):
                return _json(start_response, {})
            return list(moto_app(environ, start_response))

    return logged


def main(argv: list[str] | None = None) -> int:
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    for line in moto_shims.apply_all():
        print(f"shim {line}", flush=True)
    keep_tasks_as_the_agent_reports_them()
    moto_shims.PUBLIC_URL.append(f"http://127.0.0.1:{args.port}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the call log above says more
    server = make_server("127.0.0.1", args.port, make_app(), threaded=True)
    print(f"serving on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
