"""AWS WAF on the API stage, behind `-c bulkapi:waf=true`: AWS's common rule set and a rate-based rule per client IP.

Off by default: a web ACL costs per month, per rule and per request. The common rule set's SizeRestrictions_BODY
blocks bodies over 8 KB, which every CSV upload and most inline lists exceed, so that one rule only counts.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import StackConfig

COMMON_RULES = "AWSManagedRulesCommonRuleSet"
# Rules of the common set that would refuse the API's own traffic: counted, not blocked.
COUNTED_RULES = ("SizeRestrictions_BODY",)


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


class WafConstruct(Construct):
    """A regional web ACL associated with the API stage."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig, stage: apigw.Stage) -> None:
        super().__init__(scope, construct_id)
        name = f"bulkapi-{config.stage}"
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=name,
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name=COMMON_RULES,
                    priority=0,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name=COMMON_RULES,
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                                )
                                for rule in COUNTED_RULES
                            ],
                        )
                    ),
                    visibility_config=_visibility(f"{name}-common"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=config.waf_rate_limit, aggregate_key_type="IP", evaluation_window_sec=300
                        )
                    ),
                    visibility_config=_visibility(f"{name}-rate"),
                ),
            ],
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )
