"""Who may call an endpoint, in the synthesized stacks of the all-options fixture: churn is public with JWT
validation at the load balancer, fraud is internal with API keys in the server; the platform has both load
balancers and publishes the internal one through PrivateLink."""

from __future__ import annotations

import json

import pytest

from tests.infra.synth import across, by_path_suffix, only, policy, ref, resources, target

PLATFORM = "acme-ml-qa-platform"
CHURN = "acme-ml-qa-endpoint-churn"
FRAUD = "acme-ml-qa-endpoint-fraud"


@pytest.fixture(scope="module")
def stacks(options_synth):
    return options_synth.stack(PLATFORM), options_synth.stack(CHURN), options_synth.stack(FRAUD)


def group_ref(stack, suffix: str) -> str:
    return ref("aws_security_group", by_path_suffix(stack, "aws_security_group", suffix)[0], "id")


def listener_of(platform, balancer_suffix: str, port: int) -> str:
    balancer_id, _ = by_path_suffix(platform, "aws_lb", balancer_suffix)
    (listener_id,) = [key for key, body in resources(platform, "aws_lb_listener").items()
                      if body["load_balancer_arn"] == ref("aws_lb", balancer_id, "arn") and body["port"] == port]
    return ref("aws_lb_listener", listener_id, "arn")


def test_the_internal_load_balancer_sits_in_the_private_subnets_behind_its_own_group(stacks):
    platform, _, _ = stacks
    _, internal = by_path_suffix(platform, "aws_lb", "internal-load-balancer/lb")
    _, public = by_path_suffix(platform, "aws_lb", "load-balancer/lb")
    private = [ref("aws_subnet", key, "id") for key, body in resources(platform, "aws_subnet").items()
               if body["//"]["metadata"]["path"].split("/")[-1].startswith("private")]
    assert internal["internal"] is True and sorted(internal["subnets"]) == sorted(private) and len(private) == 3
    assert public["internal"] is False and not set(public["subnets"]) & set(private)
    group = group_ref(platform, "internal-load-balancer/security-group")
    assert internal["security_groups"] == [group] and group not in public["security_groups"]
    admitted = sorted((rule["cidr_ipv4"], rule["from_port"]) for rule in
                      resources(platform, "aws_vpc_security_group_ingress_rule").values()
                      if rule["security_group_id"] == group and "cidr_ipv4" in rule)
    assert admitted == [("10.99.0.0/16", 80), ("10.99.0.0/16", 443), ("172.20.0.0/20", 80), ("172.20.0.0/20", 443)]
    assert platform["output"]["internal-base-url"]["value"] == "https://ml.acme.example"


def test_private_link_publishes_the_internal_load_balancer_to_the_listed_principals(stacks):
    platform, _, _ = stacks
    _, service = only(platform, "aws_vpc_endpoint_service")
    assert service["allowed_principals"] == ["arn:aws:iam::222222222222:root"]
    assert service["acceptance_required"] is False
    _, attachment = only(platform, "aws_lb_target_group_attachment")
    internal_id, _ = by_path_suffix(platform, "aws_lb", "internal-load-balancer/lb")
    assert attachment["target_id"] == ref("aws_lb", internal_id, "arn") and attachment["port"] == 443
    assert "private-link-service-name" in platform["output"]


def test_each_endpoint_is_routed_on_the_load_balancer_its_exposure_names(stacks):
    platform, churn, fraud = stacks
    _, churn_rule = only(churn, "aws_lb_listener_rule")
    _, fraud_rule = only(fraud, "aws_lb_listener_rule")
    assert across(platform, churn_rule["listener_arn"]) == listener_of(platform, "load-balancer/lb", 443)
    assert across(platform, fraud_rule["listener_arn"]) == listener_of(platform, "internal-load-balancer/lb", 443)
    # fraud's tasks admit the internal load balancer only, and only it may reach them.
    service_group = group_ref(fraud, "identity/security-group")
    (ingress,) = [rule for rule in resources(fraud, "aws_vpc_security_group_ingress_rule").values()
                  if rule["security_group_id"] == service_group
                  and rule.get("referenced_security_group_id", "").startswith("${data.terraform_remote_state")]
    assert across(platform, ingress["referenced_security_group_id"]) == group_ref(
        platform, "internal-load-balancer/security-group")


def test_jwt_is_validated_by_the_load_balancer_before_the_forward(stacks):
    _, churn, _ = stacks
    _, rule = only(churn, "aws_lb_listener_rule")
    check, forward = sorted(rule["action"], key=lambda action: action["order"])
    assert check["type"] == "jwt-validation" and forward["type"] == "forward"
    assert check["jwt_validation"] == {
        "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Acme",
        "jwks_endpoint": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Acme/.well-known/jwks.json",
        "additional_claim": [
            {"name": "scope", "format": "space-separated-values", "values": ["models/invoke"]},
            {"name": "client_id", "format": "single-string", "values": ["4example0client0id"]}]}
    # No key set: the load balancer checks tokens. Only the smoke test's OAuth client (pipeline.keys smoke-client).
    (smoke,) = resources(churn, "aws_secretsmanager_secret").values()
    assert smoke["name"] == "acme-ml/qa/churn/smoke-key" and resources(churn, "aws_secretsmanager_secret_version") == {}
    assert "secrets" not in json.loads(by_path_suffix(churn, "aws_ecs_task_definition", "service/task-definition")[1][
        "container_definitions"])[0]


def test_api_keys_reach_the_server_through_ecs_secrets_and_only_that_secret(stacks):
    _, _, fraud = stacks
    key_set_id, key_set = by_path_suffix(fraud, "aws_secretsmanager_secret", "api-keys/key-set")
    key_set_arn = ref("aws_secretsmanager_secret", key_set_id, "arn")
    assert key_set["name"] == "acme-ml/qa/fraud/api-keys" and key_set["recovery_window_in_days"] == 0
    _, initial = only(fraud, "aws_secretsmanager_secret_version")
    assert json.loads(initial["secret_string"]) == {"keys": [], "version": 1}
    assert set(initial["lifecycle"]["ignore_changes"]) == {"secret_string", "version_stages"}
    services = {body["//"]["metadata"]["path"].split("/")[1]: body
                for body in resources(fraud, "aws_ecs_task_definition").values()}
    serving = [services["service-current"], services["service-candidate"]]
    assert len(serving) == 2
    for task in serving:
        (container,) = json.loads(task["container_definitions"])
        assert container["secrets"] == [{"name": "SERVING_API_KEYS", "valueFrom": key_set_arn}]
        variables = {item["name"]: item["value"] for item in container["environment"]}
        assert variables["SERVING_API_KEYS_SECRET"] == key_set_arn and "SERVING_API_KEYS" not in variables
        _, _, execution = target(fraud, task["execution_role_arn"])
        assert execution["name"].startswith("acme-ml-qa-fraud")
    execution_statements = [statement for body in resources(fraud, "aws_iam_role_policy").values()
                            if body["role"] == serving[0]["execution_role_arn"].replace(".arn}", ".id}")
                            for statement in policy(body)["Statement"]]
    reads = [statement for statement in execution_statements if "secretsmanager:GetSecretValue" in statement["Action"]]
    assert reads and all(read == {"Sid": "ReadApiKeySet", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                  "Resource": key_set_arn} for read in reads)
    for name in ("service-shadowed", "model-sync", "capture-export"):
        assert "secrets" not in json.loads(services[name]["container_definitions"])[0], name


def test_the_task_role_rereads_the_key_set_and_nothing_else_of_secrets_manager(stacks):
    _, _, fraud = stacks
    key_set_arn = ref("aws_secretsmanager_secret",
                      by_path_suffix(fraud, "aws_secretsmanager_secret", "api-keys/key-set")[0], "arn")
    statements = [statement for body in resources(fraud, "aws_iam_role_policy").values()
                  if not body["//"]["metadata"]["path"].split("/")[1] == "smoke-probe"
                  for statement in policy(body)["Statement"]
                  if any(str(action).startswith("secretsmanager:") for action in
                         (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]))]
    assert {statement["Sid"] for statement in statements} == {"ReadApiKeySet", "RefreshApiKeySet"}
    assert {statement["Resource"] for statement in statements} == {key_set_arn}


def test_only_the_smoke_step_may_read_the_smoke_key(stacks):
    _, _, fraud = stacks
    smoke_id, smoke = by_path_suffix(fraud, "aws_secretsmanager_secret", "api-keys/smoke-key")
    assert smoke["name"] == "acme-ml/qa/fraud/smoke-key"
    _, secret_policy = only(fraud, "aws_secretsmanager_secret_policy")
    assert secret_policy["secret_arn"] == ref("aws_secretsmanager_secret", smoke_id, "arn")
    (deny,) = policy(secret_policy)["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    # qa is deployed through its own role: the smoke step reads through it; fraud is internal, so ECS reads the key
    # into its smoke probe task as the probe's execution role.
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalArn": [
        "arn:aws:iam::111111111111:role/acme-deploy",
        "arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.account.account_id}:role/"
        "acme-ml-qa-fraud-smoke-probe"]}}
    _, role = by_path_suffix(fraud, "aws_iam_role", "smoke-probe/execution-role")
    assert role["name"] == "acme-ml-qa-fraud-smoke-probe"


def test_an_internal_endpoint_has_a_smoke_probe_task_that_calls_it_from_inside_the_vpc(stacks):
    platform, churn, fraud = stacks
    assert not [body for body in resources(churn, "aws_ecs_task_definition").values()
                if "/smoke-probe/" in body["//"]["metadata"]["path"]]  # public: Smoke calls it directly
    _, task = by_path_suffix(fraud, "aws_ecs_task_definition", "smoke-probe/task-definition")
    (container,) = json.loads(task["container_definitions"])
    assert task["family"] == "acme-ml-qa-fraud-smoke-probe" and "task_role_arn" not in task
    assert container["entryPoint"] == ["python", "-m", "serving.probe"] and container["name"] == "probe"
    (service_task,) = [json.loads(body["container_definitions"])[0] for body in
                       resources(fraud, "aws_ecs_task_definition").values()
                       if body["//"]["metadata"]["path"].split("/")[1] == "service-current"]
    assert container["image"] == service_task["image"]  # the commit deployed
    variables = {item["name"]: item["value"] for item in container["environment"]}
    # fraud has a domain and a host: the probe calls that HTTPS name, as clients in the VPC do.
    assert variables == {"PROBE_ENDPOINT": "fraud", "PROBE_ROOT": "https://ml.acme.example/fraud",
                         "PROBE_AUTH": "api_key", "PROBE_IMAGE_TAG": service_task["image"].rsplit(":", 1)[1]}
    smoke_key = ref("aws_secretsmanager_secret",
                    by_path_suffix(fraud, "aws_secretsmanager_secret", "api-keys/smoke-key")[0], "arn")
    assert container["secrets"] == [{"name": "PROBE_CREDENTIALS", "valueFrom": smoke_key}]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/acme-ml-qa-fraud/smoke-probe"
    assert container["logConfiguration"]["options"]["awslogs-stream-prefix"] == "acme-ml-qa-fraud-smoke-probe"
    # Its execution role reads that secret and nothing else of Secrets Manager.
    _, _, execution = target(fraud, task["execution_role_arn"])
    assert execution["name"] == "acme-ml-qa-fraud-smoke-probe"
    (execution_policy,) = [body for body in resources(fraud, "aws_iam_role_policy").values()
                           if body["role"] == task["execution_role_arn"].replace(".arn}", ".id}")]
    reads = [statement for statement in policy(execution_policy)["Statement"]
             if "secretsmanager:GetSecretValue" in statement["Action"]]
    assert reads == [{"Sid": "ReadSmokeCredentials", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                      "Resource": smoke_key}]
    # Its own group: out to the internal load balancer on the listener port (and HTTPS), which admits it.
    probe_group = group_ref(fraud, "smoke-probe/security-group")
    balancer_group = group_ref(platform, "internal-load-balancer/security-group")
    egress = [(rule.get("referenced_security_group_id") or rule.get("cidr_ipv4"), rule["from_port"]) for rule in
              resources(fraud, "aws_vpc_security_group_egress_rule").values()
              if rule["security_group_id"] == probe_group]
    assert sorted((across(platform, peer) if peer.startswith("${data") else peer, port)
                  for peer, port in egress) == sorted([(balancer_group, 443), ("0.0.0.0/0", 443)])
    (admitted,) = [rule for rule in resources(fraud, "aws_vpc_security_group_ingress_rule").values()
                   if rule.get("referenced_security_group_id") == probe_group]
    assert across(platform, admitted["security_group_id"]) == balancer_group and admitted["from_port"] == 443
    assert not [rule for rule in resources(fraud, "aws_vpc_security_group_ingress_rule").values()
                if rule["security_group_id"] == probe_group]  # nothing in


def test_in_the_pipeline_s_own_account_the_smoke_step_s_role_is_the_reader(default_synth):
    """The shipped configuration: every endpoint has API keys; prod's sit behind the internal load balancer."""
    stack = default_synth.stack("mlops-staging-endpoint-a")
    _, secret_policy = only(stack, "aws_secretsmanager_secret_policy")
    (deny,) = policy(secret_policy)["Statement"]
    (reader,) = deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
    assert reader.endswith(":role/mlops-delivery/mlops-smoke-staging-build")
    _, prod_policy = only(default_synth.stack("mlops-prod-endpoint-a"), "aws_secretsmanager_secret_policy")
    smoke_reader, probe_reader = policy(prod_policy)["Statement"][0]["Condition"]["StringNotEquals"][
        "aws:PrincipalArn"]
    assert smoke_reader.endswith(":role/mlops-delivery/mlops-smoke-prod-build")
    assert probe_reader.endswith(":role/mlops-prod-a-smoke-probe")
    # ... and that role may read the smoke keys of its environment's endpoints, decrypting through Secrets Manager
    # only; prod's also runs the probes of its internal endpoints.
    pipeline = default_synth.stack("mlops-pipeline")
    _, role = by_path_suffix(pipeline, "aws_iam_role", "smoke-staging/role")
    assert role["name"] == "mlops-smoke-staging-build"

    def smoke_statements(environment: str) -> dict:
        body = next(body for body in resources(pipeline, "aws_iam_role_policy").values()
                    if body["//"]["metadata"]["path"].startswith(f"mlops-pipeline/smoke-{environment}/"))
        return {statement["Sid"]: statement for statement in policy(body)["Statement"]}

    statements = smoke_statements("staging")
    assert [secret.split(":secret:")[1] for secret in statements["ReadSmokeKeys"]["Resource"]] == [
        "mlops/staging/a/smoke-key-*", "mlops/staging/b/smoke-key-*"]
    assert statements["DecryptSmokeKeys"]["Condition"] == {"StringEquals": {
        "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}
    assert "RunSmokeProbes" not in statements  # staging's endpoints are public: Smoke calls them
    prod = smoke_statements("prod")
    account = "${data.aws_caller_identity.account.account_id}"
    ecs = f"arn:${{data.aws_partition.partition.partition}}:ecs:eu-west-1:{account}"
    assert prod["RunSmokeProbes"] == {
        "Sid": "RunSmokeProbes", "Effect": "Allow", "Action": "ecs:RunTask",
        "Resource": [f"{ecs}:task-definition/mlops-prod-a-smoke-probe:*",
                     f"{ecs}:task-definition/mlops-prod-b-smoke-probe:*"],
        "Condition": {"ArnEquals": {"ecs:cluster": f"{ecs}:cluster/mlops-prod"}}}
    assert [arn.rsplit("/", 1)[1] for arn in prod["PassSmokeProbeRoles"]["Resource"]] == [
        "mlops-prod-a-smoke-probe", "mlops-prod-b-smoke-probe"]
    assert prod["PassSmokeProbeRoles"]["Condition"] == {"StringEquals": {
        "iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert prod["FindSmokeProbeRevisions"]["Action"] == "ecs:DescribeTaskDefinition"
    assert prod["WatchSmokeProbes"]["Resource"] == f"{ecs}:task/mlops-prod/*"
    assert prod["FindProbedServices"]["Resource"] == [f"{ecs}:service/mlops-prod/a", f"{ecs}:service/mlops-prod/b"]
    assert [arn.split(":log-group:")[1] for arn in prod["ReadSmokeProbeLogs"]["Resource"]] == [
        "/ecs/mlops-prod-a/smoke-probe:log-stream:*", "/ecs/mlops-prod-b/smoke-probe:log-stream:*"]
