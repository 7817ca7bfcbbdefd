"""The load balancers' stand-in: an HTTP proxy on 127.0.0.1 that answers for every load balancer's DNS name of
the emulated account, as DNS and the load balancer would together. Clients reach it as an HTTP proxy
(`http_proxy`), so they call `http://<load balancer DNS name>/...` exactly as in AWS.

Routing is read from the emulated account, i.e. from what Terraform applied: the listener on the request's port,
its rules by priority (host-header and path-pattern conditions), forwarding by the forward action's target group
weights to each group's healthy tasks (round robin; when every registered target is unhealthy, to all of them, as
the load balancer fails open); the listener's default action (a fixed response) otherwise. A client's connection is
first decided against the applied network (tests/rehearsal/network.py): an internet client reaches an
internet-facing load balancer only through its security groups, network ACLs and its subnets' route to an internet
gateway, and never an internal one; a client inside a VPC names itself as the proxy's user (`http://<client>:-@...`:
a task by its ECS task id, or the rehearsal's client host in a VPC) and connects from its own network interface. A
refused connection is answered 504 and recorded.
"""

from __future__ import annotations

import fnmatch
import http.server
import itertools
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.rehearsal.network import FlowRefused

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "proxy-authorization"}


def _matches(rule: dict[str, Any], host: str, path: str) -> bool:
    for condition in rule.get("Conditions", []):
        field = condition["Field"]
        if field == "path-pattern":
            values = condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values", [])
            if not any(fnmatch.fnmatchcase(path, value) for value in values):
                return False
        elif field == "host-header":
            values = condition.get("HostHeaderConfig", {}).get("Values") or condition.get("Values", [])
            if not any(fnmatch.fnmatchcase(host.lower(), value.lower()) for value in values):
                return False
        else:
            return False
    return True


def client_named(proxy_authorization: str | None) -> str | None:
    """The client a request comes from, by the user of its proxy credentials (None: an internet client)."""
    import base64
    import binascii

    if not proxy_authorization or not proxy_authorization.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(proxy_authorization.split(" ", 1)[1]).decode().split(":", 1)[0] or None
    except (binascii.Error, UnicodeDecodeError):
        return None


def proxy_for(proxy_url: str, client: str) -> str:
    """The stand-in's address as `client`'s HTTP proxy."""
    scheme, _, address = proxy_url.partition("://")
    return f"{scheme}://{client}:-@{address}"


class LoadBalancers:
    def __init__(self, elbv2: Callable[[], Any], healthy_targets: Callable[[str], list[str]],
                 client_flow: Callable[[dict[str, Any], int, str | None], None]):
        """`client_flow(load balancer, port, client)` raises FlowRefused when the client (None: on the internet)
        could not connect."""
        self.elbv2 = elbv2
        self.healthy_targets = healthy_targets
        self.client_flow = client_flow
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.weights: dict[str, dict[str, int]] = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name="load-balancers", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()

    def pick_group(self, rule: str, weighted: list[tuple[str, int]]) -> str | None:
        """A weighted forward's target group for the next request: each group gets its weight's share of requests
        (smooth weighted round robin, deterministic), among the groups that have a target to send to."""
        if not weighted:
            return None
        with self.lock:
            current = self.weights.setdefault(rule, {})
            total = sum(weight for _, weight in weighted)
            for arn, weight in weighted:
                current[arn] = current.get(arn, 0) + weight
            chosen = max(weighted, key=lambda item: current[item[0]])[0]
            current[chosen] -= total
            return chosen

    def route(self, host: str, port: int, path: str,
              client: str | None = None) -> tuple[str | None, dict[str, Any] | None]:
        """(target address, None) for a forward, or (None, fixed response) for the default or a missing target."""
        elbv2 = self.elbv2()
        balancers = [b for b in elbv2.describe_load_balancers()["LoadBalancers"] if b["DNSName"] == host]
        if not balancers:
            return None, {"StatusCode": "502", "MessageBody": f"no load balancer named {host}"}
        try:
            self.client_flow(balancers[0], port, client)
        except FlowRefused as refused:
            return None, {"StatusCode": "504", "MessageBody": f"connection refused by the network: {refused}"}
        listeners = [listener for listener in
                     elbv2.describe_listeners(LoadBalancerArn=balancers[0]["LoadBalancerArn"])["Listeners"]
                     if listener["Port"] == port]
        if not listeners:
            return None, {"StatusCode": "503", "MessageBody": f"no listener on port {port}"}
        rules = elbv2.describe_rules(ListenerArn=listeners[0]["ListenerArn"])["Rules"]
        ordered = sorted((r for r in rules if not r.get("IsDefault")), key=lambda r: int(r["Priority"]))
        for rule in [*ordered, *(r for r in rules if r.get("IsDefault"))]:
            if rule.get("IsDefault") or _matches(rule, host, path):
                action = rule["Actions"][0]
                if action["Type"] == "fixed-response":
                    return None, action["FixedResponseConfig"]
                weighted = [(g["TargetGroupArn"], int(g.get("Weight", 1)))
                            for g in action.get("ForwardConfig", {}).get("TargetGroups", [])] \
                    or [(action["TargetGroupArn"], 1)]
                group = self.pick_group(rule.get("RuleArn", ""), [(arn, weight) for arn, weight in weighted
                                                                 if weight > 0 and self.healthy_targets(arn)])
                if group is None:
                    return None, {"StatusCode": "503", "MessageBody": "no healthy target"}
                targets = self.healthy_targets(group)
                return targets[next(self.turn) % len(targets)], None
        return None, {"StatusCode": "404", "MessageBody": "no rule"}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        balancers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                host = (url.hostname or self.headers.get("Host", "").split(":")[0]).lower()
                path = url.path or "/"
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target, fixed = balancers.route(host, url.port or 80, path,
                                                client_named(self.headers.get("Proxy-Authorization")))
                if fixed is not None:
                    self._answer(int(fixed["StatusCode"]), (fixed.get("MessageBody") or "").encode(),
                                 fixed.get("ContentType", "text/plain"))
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                forwarded = urllib.request.Request(
                    f"http://{target}{path}{'?' + url.query if url.query else ''}", data=body or None,
                    headers={**headers, "X-Forwarded-For": self.client_address[0]}, method=self.command)
                try:
                    with urllib.request.urlopen(forwarded, timeout=30) as response:  # noqa: S310 - a local task
                        self._answer(response.status, response.read(), response.headers.get("Content-Type"))
                except urllib.error.HTTPError as error:
                    self._answer(error.code, error.read(), error.headers.get("Content-Type"))
                except OSError as error:
                    self._answer(502, f"target {target}: {error}".encode(), "text/plain")

            def _answer(self, status: int, body: bytes, content_type: str | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

        return Handler
