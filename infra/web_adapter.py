"""The Lambda Web Adapter (LWA) layer the stream function runs behind: one ARN per region, from a documented table.

AWS publishes the adapter as a public layer from its own accounts, per region and per architecture. Every function
here is arm64 (infra.functions.ARCHITECTURE), so the table holds the arm64 layer, `LambdaAdapterLayerArm64`.

Sources (read 2026, `awslabs/aws-lambda-web-adapter`):
- README "Lambda functions packaged as Zip package": commercial regions use
  `arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:<version>`, one version for all regions.
- `.github/workflows/prod.json`: the commercial regions the release pipeline publishes to, each with
  `arm64_supported: true` (the list below is that file's).
- Version 30 is LWA 1.1.0 (27 was 1.0.0, 28 was 1.0.1; 29 was withdrawn).
- China (aws-cn): the README documents the x86_64 layer only, from account 041581134020 in cn-north-1 and
  069767869989 in cn-northwest-1 (`CHINA_X86_64_ONLY`). The pipeline may publish arm64 there too, but no arm64 ARN or
  version is documented, so China is not in the arm64 table: a China deploy passes the ARN it verified itself.

A region missing from the table (a newer region, aws-cn, GovCloud) fails the synth with a message naming the override,
`-c bulkapi:webAdapterLayerArn=<arn>`; the override also pins another version anywhere.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, CfnMapping, CfnRule, CfnRuleAssertion, Fn, Stack, Token
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

OVERRIDE_KEY = "bulkapi:webAdapterLayerArn"
WEB_ADAPTER_ACCOUNT = "753240598075"
WEB_ADAPTER_LAYER = "LambdaAdapterLayerArm64"
WEB_ADAPTER_VERSION = 30
COMMERCIAL_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ca-central-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "me-central-1",
    "me-south-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
# region -> the arm64 adapter layer published there.
LAYER_ARNS: dict[str, str] = {
    region: f"arn:aws:lambda:{region}:{WEB_ADAPTER_ACCOUNT}:layer:{WEB_ADAPTER_LAYER}:{WEB_ADAPTER_VERSION}"
    for region in COMMERCIAL_REGIONS
}
# What the adapter's README documents for aws-cn: x86_64 only, which an arm64 function cannot load.
CHINA_X86_64_ONLY: dict[str, str] = {
    "cn-north-1": "arn:aws-cn:lambda:cn-north-1:041581134020:layer:LambdaAdapterLayerX86",
    "cn-northwest-1": "arn:aws-cn:lambda:cn-northwest-1:069767869989:layer:LambdaAdapterLayerX86",
}
_LAYER_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")


class UnknownRegionError(ValueError):
    """No adapter layer is known for the region and no override was given."""


def layer_arn(region: str, override: str | None = None) -> str:
    """The adapter layer for `region`: the override when given (a layer version ARN), else the table's."""
    if override:
        if not _LAYER_VERSION_ARN.match(override):
            raise ValueError(f"{OVERRIDE_KEY}={override!r} is not a layer version ARN (arn:...:layer:<name>:<n>)")
        return override
    if region in LAYER_ARNS:
        return LAYER_ARNS[region]
    hint = ""
    if region in CHINA_X86_64_ONLY:
        hint = (
            f" In {region} the adapter's README documents only the x86_64 layer ({CHINA_X86_64_ONLY[region]}:<n>), "
            "which the arm64 functions cannot load: find the arm64 one (`aws lambda list-layer-versions --layer-name "
            f"{CHINA_X86_64_ONLY[region].replace('LambdaAdapterLayerX86', WEB_ADAPTER_LAYER)}`) or publish the "
            "adapter's arm64 layer in your account."
        )
    raise UnknownRegionError(
        f"No Lambda Web Adapter layer is known for region {region!r} (infra/web_adapter.py lists "
        f"{len(LAYER_ARNS)} regions).{hint} Pass the arm64 layer version ARN for that region with "
        f"-c {OVERRIDE_KEY}=arn:...:layer:{WEB_ADAPTER_LAYER}:<version>."
    )


def web_adapter_layer(scope: Construct, override: str | None = None) -> lambda_.ILayerVersion:
    """The adapter layer for the stack's region.

    A stack bound to a region (`cdk deploy` passes the CLI's region, see app.py) gets the ARN at synth, and an unknown
    region fails the synth. A region-agnostic stack (tests, the local runtime) carries the table as a mapping that
    CloudFormation resolves at deploy time, guarded by a rule that refuses a region outside it with the same advice.
    """
    stack = Stack.of(scope)
    if override or not Token.is_unresolved(stack.region):
        return lambda_.LayerVersion.from_layer_version_arn(scope, "WebAdapter", layer_arn(stack.region, override))
    mapping = CfnMapping(
        stack, "WebAdapterLayerByRegion", mapping={region: {"arn": arn} for region, arn in LAYER_ARNS.items()}
    )
    CfnRule(
        stack,
        "WebAdapterLayerKnownInRegion",
        assertions=[
            CfnRuleAssertion(
                assert_=Fn.condition_contains(list(LAYER_ARNS), Aws.REGION),
                assert_description=(
                    "No Lambda Web Adapter layer is known for this region (infra/web_adapter.py). Synthesize with "
                    f"-c {OVERRIDE_KEY}=<the arm64 layer version ARN for the region>."
                ),
            )
        ],
    )
    return lambda_.LayerVersion.from_layer_version_arn(scope, "WebAdapter", mapping.find_in_map(Aws.REGION, "arn"))
