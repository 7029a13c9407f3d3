"""AWS WAF on the API stage: AWS's managed rule sets and a rate-based rule per client IP.

On by default for production stages (`bulkapi:waf`, StackConfig.waf_enabled): a web ACL costs per month, per rule
and per request, so other stages go without unless asked. The rules: the common rule set (its SizeRestrictions_BODY
blocks bodies over 8 KB, which every CSV upload and most inline lists exceed, so that one rule only counts), known
bad inputs (Log4j-style payloads, exploit paths), Amazon's IP reputation list (hosts seen in attacks and scans),
and a per-IP rate limit that stops a flood of requests with invented keys before each costs an authorizer call.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.config import StackConfig

COMMON_RULES = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
IP_REPUTATION = "AWSManagedRulesAmazonIpReputationList"
# Rules of the common set that would refuse the API's own traffic: counted, not blocked.
COUNTED_RULES = ("SizeRestrictions_BODY",)


def _managed(name: str, priority: int, metric: str) -> wafv2.CfnWebACL.RuleProperty:
    """One of AWS's managed rule groups, with its own actions."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(vendor_name="AWS", name=name)
        ),
        visibility_config=_visibility(metric),
    )


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
                _managed(KNOWN_BAD_INPUTS, 1, f"{name}-bad-inputs"),
                _managed(IP_REPUTATION, 2, f"{name}-ip-reputation"),
                wafv2.CfnWebACL.RuleProperty(
                    name="RatePerIp",
                    priority=3,
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
