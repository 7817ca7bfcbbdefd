"""Would AWS deliver this connection? Every flow the rehearsal makes, decided against the network the emulated account
holds (what Terraform applied), as the VPC documentation describes it:
- security groups are stateful: the source's groups must allow the flow out (egress), the destination's groups must
  allow it in (ingress), by CIDR, by referenced group or by prefix list, protocol and port range; the answer needs no
  rule;
- network ACLs are stateless: the source subnet's outbound and the destination subnet's inbound rules allow the
  request, and the destination's outbound and the source's inbound rules allow the answer to an ephemeral port
  (1024-65535); rules in number order, the first match decides, `*` denies;
- routing: inside one VPC the local route; to the internet the source subnet's route table needs a default route to
  an internet gateway attached to the VPC (then the source needs a public address) or to a NAT gateway whose own
  subnet routes to one; an AWS service is reached through an interface endpoint in the VPC with private DNS, a
  gateway endpoint on the subnet's route table (S3, DynamoDB), or else the internet route;
- an EFS file system is mounted through its mount target in the task's Availability Zone.
A refused flow names itself and what is missing (the rule, the route, the mount target).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EPHEMERAL_PORT = 49152
"""A representative ephemeral port for answers (the range clients use is 1024-65535 on Linux)."""
INTERNET_CLIENT = "203.0.113.10"
"""A client on the internet (TEST-NET-3)."""
AWS_SERVICE_ADDRESS = "52.94.0.10"
"""A public address of a regional AWS service endpoint, for flows that leave through NAT."""


@dataclass(frozen=True)
class Interface:
    """One end of a flow: a network interface in a subnet with its security groups, or an address outside any VPC
    (`subnet_id` None)."""

    name: str
    address: str
    subnet_id: str | None = None
    security_groups: tuple[str, ...] = ()
    public: bool = False
    """Has a public address (an internet-facing load balancer's node, a task with assignPublicIp)."""


@dataclass
class AppliedNetwork:
    """The describe_* answers of the account, kept as AWS returns them."""

    subnets: list[dict[str, Any]]
    route_tables: list[dict[str, Any]]
    security_groups: list[dict[str, Any]]
    network_acls: list[dict[str, Any]]
    nat_gateways: list[dict[str, Any]]
    internet_gateways: list[dict[str, Any]]
    vpc_endpoints: list[dict[str, Any]]
    _hosts: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, ec2: Any) -> AppliedNetwork:
        return cls(ec2.describe_subnets()["Subnets"], ec2.describe_route_tables()["RouteTables"],
                   ec2.describe_security_groups()["SecurityGroups"], ec2.describe_network_acls()["NetworkAcls"],
                   [n for n in ec2.describe_nat_gateways()["NatGateways"] if n.get("State") != "deleted"],
                   ec2.describe_internet_gateways()["InternetGateways"],
                   ec2.describe_vpc_endpoints()["VpcEndpoints"])

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if not k.startswith("_")}, default=str, indent=1)

    @classmethod
    def from_json(cls, path: Path) -> AppliedNetwork:
        return cls(**json.loads(path.read_text()))

    # --- lookups --------------------------------------------------------------------------------------------------
    def subnet(self, subnet_id: str) -> dict[str, Any]:
        (found,) = [s for s in self.subnets if s["SubnetId"] == subnet_id]
        return found

    def route_table(self, subnet_id: str) -> dict[str, Any]:
        vpc = self.subnet(subnet_id)["VpcId"]
        for table in self.route_tables:
            if any(a.get("SubnetId") == subnet_id for a in table.get("Associations", [])):
                return table
        (main,) = [t for t in self.route_tables if t["VpcId"] == vpc
                   and any(a.get("Main") for a in t.get("Associations", []))]
        return main

    def network_acl(self, subnet_id: str) -> dict[str, Any]:
        vpc = self.subnet(subnet_id)["VpcId"]
        for acl in self.network_acls:
            if any(a.get("SubnetId") == subnet_id for a in acl.get("Associations", [])):
                return acl
        (default,) = [a for a in self.network_acls if a["VpcId"] == vpc and a.get("IsDefault")]
        return default

    def interface_in(self, name: str, subnet_id: str, security_groups: list[str] | tuple[str, ...],
                     public: bool = False) -> Interface:
        """A new network interface in the subnet (an address of its CIDR, as an ENI would get)."""
        hosts = self._hosts.setdefault(subnet_id, itertools.islice(
            ipaddress.ip_network(self.subnet(subnet_id)["CidrBlock"]).hosts(), 10, None))
        return Interface(name, str(next(hosts)), subnet_id, tuple(security_groups), public)

    # --- decisions ------------------------------------------------------------------------------------------------
    def refusals(self, source: Interface, destination: Interface, port: int) -> list[str]:
        """Why AWS would drop a TCP connection from `source` to `destination` on `port`; empty when it delivers."""
        flow = f"{source.name} ({source.address}) -> {destination.name} ({destination.address}):{port}"
        problems = self._route(source, destination)
        if source.subnet_id is not None:
            problems += self._groups(source, destination, port, egress=True)
            problems += self._acl(source.subnet_id, destination.address, port, egress=True, what="request")
            problems += self._acl(source.subnet_id, destination.address, EPHEMERAL_PORT, egress=False, what="answer")
        if destination.subnet_id is not None:
            problems += self._groups(destination, source, port, egress=False)
            problems += self._acl(destination.subnet_id, source.address, port, egress=False, what="request")
            problems += self._acl(destination.subnet_id, source.address, EPHEMERAL_PORT, egress=True,
                                  what="answer")
        return [f"{flow}: {problem}" for problem in problems]

    def _vpc(self, interface: Interface) -> str | None:
        return self.subnet(interface.subnet_id)["VpcId"] if interface.subnet_id else None

    def _internet_gateway(self, vpc: str) -> str | None:
        for gateway in self.internet_gateways:
            if any(a.get("VpcId") == vpc for a in gateway.get("Attachments", [])):
                return gateway["InternetGatewayId"]
        return None

    def _default_route(self, subnet_id: str) -> dict[str, Any] | None:
        for route in self.route_table(subnet_id).get("Routes", []):
            if route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("State", "active") == "active":
                return route
        return None

    def internet_path(self, subnet_id: str, public: bool) -> list[str]:
        """What keeps an interface in this subnet from the internet (through an internet or NAT gateway)."""
        vpc = self.subnet(subnet_id)["VpcId"]
        table = self.route_table(subnet_id)["RouteTableId"]
        route = self._default_route(subnet_id)
        gateway = self._internet_gateway(vpc)
        if route is None:
            return [f"route table {table} of subnet {subnet_id} has no route to 0.0.0.0/0"]
        if route.get("GatewayId", "").startswith("igw-"):
            if route["GatewayId"] != gateway:
                return [f"route table {table} sends 0.0.0.0/0 to {route['GatewayId']}, not attached to {vpc}"]
            return [] if public else [f"subnet {subnet_id} routes to the internet gateway but the interface has no "
                                      "public address (a private subnet needs a NAT gateway route)"]
        nat_id = route.get("NatGatewayId")
        if nat_id:
            nats = [n for n in self.nat_gateways if n["NatGatewayId"] == nat_id]
            if not nats:
                return [f"route table {table} sends 0.0.0.0/0 to {nat_id}, which does not exist"]
            return [f"{nat_id}: {p}" for p in self.internet_path(nats[0]["SubnetId"], public=True)]
        return [f"route table {table} sends 0.0.0.0/0 to neither an internet nor a NAT gateway: {route}"]

    def _route(self, source: Interface, destination: Interface) -> list[str]:
        source_vpc, destination_vpc = self._vpc(source), self._vpc(destination)
        if source_vpc and destination_vpc:
            return [] if source_vpc == destination_vpc else [f"{source_vpc} and {destination_vpc} are not peered"]
        if source.subnet_id:  # to the internet
            return self.internet_path(source.subnet_id, source.public)
        if destination.subnet_id:  # from the internet: the destination must be public and its subnet routed
            if not destination.public:
                return [f"{destination.name} has no public address (internal)"]
            return self.internet_path(destination.subnet_id, public=True)
        return []

    def _groups(self, interface: Interface, peer: Interface, port: int, egress: bool) -> list[str]:
        direction = "egress" if egress else "ingress"
        for group in [g for g in self.security_groups if g["GroupId"] in interface.security_groups]:
            for rule in group.get("IpPermissionsEgress" if egress else "IpPermissions", []):
                if _rule_covers(rule, port) and self._rule_admits(rule, peer):
                    return []
        return [f"no {direction} rule of {', '.join(interface.security_groups) or 'its (no) security groups'} "
                f"allows tcp/{port} {'to' if egress else 'from'} {peer.name} ({peer.address}"
                f"{', ' + ', '.join(peer.security_groups) if peer.security_groups else ''})"]

    def _rule_admits(self, rule: dict[str, Any], peer: Interface) -> bool:
        address = ipaddress.ip_address(peer.address)
        if any(address in ipaddress.ip_network(r["CidrIp"]) for r in rule.get("IpRanges", [])):
            return True
        if any(p["GroupId"] in peer.security_groups for p in rule.get("UserIdGroupPairs", [])):
            return True
        return bool(rule.get("PrefixListIds")) and peer.name.startswith("gateway endpoint")

    def _acl(self, subnet_id: str, peer_address: str, port: int, egress: bool, what: str) -> list[str]:
        acl = self.network_acl(subnet_id)
        entries = sorted((e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress),
                         key=lambda e: int(e["RuleNumber"]))
        address = ipaddress.ip_address(peer_address)
        for entry in entries:
            protocol = str(entry.get("Protocol"))
            if protocol not in ("-1", "6", "tcp", "all"):
                continue
            ports = entry.get("PortRange")
            if protocol in ("6", "tcp") and ports and not int(ports["From"]) <= port <= int(ports["To"]):
                continue
            if address not in ipaddress.ip_network(entry.get("CidrBlock", "0.0.0.0/0")):
                continue
            if entry["RuleAction"] == "allow":
                return []
            return [f"network ACL {acl['NetworkAclId']} rule {entry['RuleNumber']} denies the {what} "
                    f"({'outbound' if egress else 'inbound'} tcp/{port})"]
        return [f"network ACL {acl['NetworkAclId']} has no rule allowing the {what} "
                f"({'outbound' if egress else 'inbound'} tcp/{port} {peer_address})"]

    def to_aws_service(self, source: Interface, service: str, region: str) -> list[str]:
        """Why an HTTPS call from `source` to an AWS service (e.g. `s3`, `ecr.api`, `logs`) would not connect."""
        vpc = self._vpc(source)
        name = f"com.amazonaws.{region}.{service}"
        endpoints = [e for e in self.vpc_endpoints if e["VpcId"] == vpc and e["ServiceName"] == name
                     and e.get("State", "available").lower() == "available"]
        for endpoint in endpoints:
            if endpoint["VpcEndpointType"] == "Interface" and endpoint.get("PrivateDnsEnabled"):
                subnets = endpoint.get("SubnetIds", [])
                zone = self.subnet(source.subnet_id)["AvailabilityZone"]  # type: ignore[arg-type]
                local = [s for s in subnets if self.subnet(s)["AvailabilityZone"] == zone] or subnets
                target = Interface(f"interface endpoint {service}", self._endpoint_address(local[0]), local[0],
                                   tuple(g["GroupId"] for g in endpoint.get("Groups", [])))
                return self.refusals(source, target, 443)
            if endpoint["VpcEndpointType"] == "Gateway" and self.route_table(source.subnet_id)[  # type: ignore
                    "RouteTableId"] in endpoint.get("RouteTableIds", []):
                target = Interface(f"gateway endpoint {service}", AWS_SERVICE_ADDRESS)
                return [f"{source.name} -> {service} (gateway endpoint): {p}"
                        for p in self._groups(source, target, 443, egress=True)]
        target = Interface(f"{service}.{region}.amazonaws.com", AWS_SERVICE_ADDRESS)
        return self.refusals(source, target, 443)

    def _endpoint_address(self, subnet_id: str) -> str:
        return str(next(iter(ipaddress.ip_network(self.subnet(subnet_id)["CidrBlock"]).hosts())))


def _rule_covers(rule: dict[str, Any], port: int) -> bool:
    protocol = str(rule.get("IpProtocol"))
    if protocol == "-1":
        return True
    if protocol not in ("tcp", "6"):
        return False
    return int(rule.get("FromPort", 0)) <= port <= int(rule.get("ToPort", 65535))


class FlowRefused(RuntimeError):
    """A connection AWS would not deliver: the message names the flow and what is missing."""


class FlowLedger:
    """The flows the rehearsal made, by kind (e.g. `load balancer -> task`), and the ones AWS would have dropped.
    `made` keeps each distinct flow in a form `replay` decides again (tests replay them on a changed network)."""

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.checked: dict[str, int] = {}
        self.refused: dict[str, list[str]] = {}
        """Kind -> every distinct reason a flow of that kind was refused."""
        self.made: list[dict[str, Any]] = []

    def connect(self, network: AppliedNetwork, kind: str, source: Interface, destination: Interface,
                port: int) -> None:
        """Raises FlowRefused when AWS would drop the connection."""
        self._record(kind, network.refusals(source, destination, port),
                     {"kind": kind, "source": asdict(source), "destination": asdict(destination), "port": port})

    def call_service(self, network: AppliedNetwork, kind: str, source: Interface, service: str, region: str) -> None:
        """Raises FlowRefused when an HTTPS call to the AWS service would not connect."""
        self._record(kind, network.to_aws_service(source, service, region),
                     {"kind": kind, "source": asdict(source), "service": service, "region": region})

    def refuse(self, kind: str, reason: str) -> None:
        self._record(kind, [reason], None)

    def _record(self, kind: str, refusals: list[str], flow: dict[str, Any] | None) -> None:
        with self.lock:
            self.checked[kind] = self.checked.get(kind, 0) + 1
            known = self.refused.setdefault(kind, [])
            known.extend(r for r in refusals if r not in known)
            if flow is not None and flow not in self.made:
                self.made.append(flow)
        if refusals:
            raise FlowRefused("; ".join(refusals))


def replay(network: AppliedNetwork, flow: dict[str, Any]) -> list[str]:
    """A recorded flow decided again on `network`: why it would be dropped (empty: delivered)."""
    source = Interface(**{**flow["source"], "security_groups": tuple(flow["source"]["security_groups"])})
    if "service" in flow:
        return network.to_aws_service(source, flow["service"], flow["region"])
    destination = Interface(**{**flow["destination"],
                               "security_groups": tuple(flow["destination"]["security_groups"])})
    return network.refusals(source, destination, flow["port"])
