"""The project's two permissions boundaries, created once by an administrator (the bootstrap stack).

- The workload boundary caps every role the platform and endpoint stacks create (task, execution, sync, events and
  flow-log roles): whatever policy such a role is given, it can change nothing in IAM.
- The delivery boundary caps the pipeline's roles (the CodeBuild steps, the pipeline): a deploy role can create or
  change a role only if that role carries the workload boundary, can never remove a boundary, change either
  boundary, change a delivery role, or create IAM users, groups, keys or policies. Together they close the way
  from "may deploy" to "may grant itself anything": a role it makes is capped, and it cannot uncap itself.

The stacks attach them by ARN (`arn:<partition>:iam::<account>:policy/<name>`), as the bootstrap stack's state is
local and not readable by the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.iam_policy import IamPolicy
from constructs import Construct

from modules.iam import Statement, policy_document

IAM_WRITES = ["iam:Add*", "iam:Attach*", "iam:Change*", "iam:Create*", "iam:Deactivate*", "iam:Delete*",
              "iam:Detach*", "iam:Enable*", "iam:Put*", "iam:Remove*", "iam:Reset*", "iam:Resync*", "iam:Set*",
              "iam:Tag*", "iam:Untag*", "iam:Update*", "iam:Upload*"]
"""Every IAM action that changes something (iam:PassRole and reads are not among them)."""
ROLE_POLICY_CHANGES = ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"]
"""Role changes whose request carries the role's boundary (`iam:PermissionsBoundary`)."""
NOT_ROLES = ["iam:CreateUser", "iam:CreateGroup", "iam:CreateAccessKey", "iam:CreateLoginProfile",
             "iam:UpdateLoginProfile", "iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:AttachGroupPolicy",
             "iam:PutGroupPolicy", "iam:AddUserToGroup", "iam:CreatePolicy", "iam:CreatePolicyVersion",
             "iam:SetDefaultPolicyVersion", "iam:CreateOpenIDConnectProvider", "iam:CreateSAMLProvider"]


@dataclass(frozen=True)
class PermissionBoundariesProps:
    workload_boundary_name: str
    delivery_boundary_name: str
    account_arn: str
    """`arn:<partition>:iam::<account>`: the boundaries' own ARNs are built from it."""
    delivery_role_path: str
    """The IAM path of every delivery role (e.g. `/mlops-delivery/`): no delivery role may change or pass them."""


def workload_boundary_document() -> str:
    return policy_document(
        {"Sid": "WithinTheBoundary", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoIamChanges", "Effect": "Deny", "Action": IAM_WRITES, "Resource": "*"})


def delivery_boundary_document(workload_boundary_arn: str, delivery_boundary_arn: str,
                               delivery_role_arns: list[str]) -> str:
    boundaries = [workload_boundary_arn, delivery_boundary_arn]
    statements: list[Statement] = [
        {"Sid": "WithinTheBoundary", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NewRolesCarryTheWorkloadBoundary", "Effect": "Deny",
         "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"], "Resource": "*",
         "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": workload_boundary_arn}}},
        {"Sid": "OnlyRolesWithTheWorkloadBoundaryChange", "Effect": "Deny", "Action": ROLE_POLICY_CHANGES,
         "Resource": "*", "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": workload_boundary_arn}}},
        {"Sid": "NoBoundaryIsRemoved", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary",
         "Resource": "*"},
        {"Sid": "TheBoundariesStayAsTheyAre", "Effect": "Deny", "Action": IAM_WRITES, "Resource": boundaries},
        {"Sid": "DeliveryRolesStayAsTheyAre", "Effect": "Deny", "Action": [*IAM_WRITES, "iam:PassRole"],
         "Resource": delivery_role_arns},
        {"Sid": "NoUsersGroupsKeysOrPolicies", "Effect": "Deny", "Action": NOT_ROLES, "Resource": "*"},
    ]
    return policy_document(*statements)


class PermissionBoundaries(Construct):
    """Attributes: `workload`, `delivery` (the IamPolicy resources), `workload_arn`, `delivery_arn`."""

    def __init__(self, scope: Construct, construct_id: str, props: PermissionBoundariesProps):
        super().__init__(scope, construct_id)
        self.workload_arn = f"{props.account_arn}:policy/{props.workload_boundary_name}"
        self.delivery_arn = f"{props.account_arn}:policy/{props.delivery_boundary_name}"
        self.workload = IamPolicy(
            self, "workload", name=props.workload_boundary_name, policy=workload_boundary_document(),
            description="Caps every role the platform and endpoint stacks create: no IAM changes")
        roles = [f"{props.account_arn}:role{props.delivery_role_path}*"]
        self.delivery = IamPolicy(
            self, "delivery", name=props.delivery_boundary_name,
            policy=delivery_boundary_document(self.workload_arn, self.delivery_arn, roles),
            description="Caps the pipeline's roles: roles they make carry the workload boundary; no way to uncap")


class WorkloadBoundary(Construct):
    """An environment's own workload boundary, for an environment deployed through its own role in its own account,
    where the bootstrap stack's does not exist. Attributes: `policy`, `arn`."""

    def __init__(self, scope: Construct, construct_id: str, name: str):
        super().__init__(scope, construct_id)
        self.policy = IamPolicy(self, "policy", name=name, policy=workload_boundary_document(),
                                description="Caps every role of this environment's stacks: no IAM changes")
        self.arn: str = self.policy.arn
