"""cdk-nag v3 (AwsSolutions) on the app, and per-resource acknowledgements with their reasons."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from constructs import IConstruct

MIN_REASON = 40  # a reason has to say why for this resource, not just "not needed"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on one resource with a specific reason."""
    if len(reason) < MIN_REASON:
        raise ValueError(f"{construct.node.path}: the reason for {rule} is too short to be specific")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def resource_of(construct: IConstruct) -> IConstruct:
    """The CloudFormation resource of an L2 construct: acknowledgements go there, not on a whole subtree."""
    child = construct.node.default_child
    if child is None:
        raise ValueError(f"{construct.node.path} has no CloudFormation resource of its own")
    return child


def policy_of(role: IConstruct) -> IConstruct:
    """The CloudFormation policy of a role's default policy, where grants (and their IAM5 findings) land."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"{role.node.path} has no default policy yet: acknowledge after granting")
    return resource_of(policy)


def add_checks(app: App) -> None:
    """Run AwsSolutions on every synth: an unacknowledged finding fails it."""
    from cdk_nag import AwsSolutionsChecks  # a dev dependency: imported only when checks are asked for

    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
