"""Create the stack's resources in the local AWS emulation, from the synthesized template.

Queues, tables, buckets, the bus, the functions' settings, the event source mappings and the state machine
definition all come from the template CDK synthesizes, so the local runtime cannot drift from what is deployed.
Where moto lacks the glue (S3 -> Lambda, EventBridge -> Lambda, SQS event source mappings), the notification
or rule targets a shadow SQS queue instead, which local/wiring.py polls. moto never fires schedule rules either:
those are recorded in the topology (function, interval) and local/runtime.py runs a timer for each.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from local.template import Resolver

ACCOUNT = "123456789012"
REGION = "us-east-1"
PREFIX = "bulkapi-local"


@dataclass
class LocalFunction:
    """A Lambda function of the template, run in-process."""

    logical_id: str
    name: str
    handler: str
    env: dict[str, str]
    timeout: int
    # MemorySize in MB (Lambda's default when the template leaves it out).
    memory: int = 128
    # How Lambda handles this function's asynchronous invocations (AWS::Lambda::EventInvokeConfig, DeadLetterConfig).
    asynchronous: AsyncConfig = field(default_factory=lambda: AsyncConfig())


# AWS's defaults for asynchronous invocations without an EventInvokeConfig: 2 retries, events up to 6 hours old.
DEFAULT_ASYNC_RETRIES = 2
DEFAULT_ASYNC_EVENT_AGE = 6 * 3600


@dataclass
class AsyncConfig:
    """A function's asynchronous invocation settings: retries of a function error, the oldest event still tried,
    and where an event goes once both are spent (an on-failure destination, the function's dead-letter queue)."""

    max_retries: int = DEFAULT_ASYNC_RETRIES
    max_event_age: int = DEFAULT_ASYNC_EVENT_AGE
    on_failure: str | None = None  # destination ARN
    dead_letter: str | None = None  # DeadLetterConfig.TargetArn


@dataclass
class QueueMapping:
    """An event source mapping (or a shadow queue standing in for S3/EventBridge -> Lambda)."""

    # "sqs": an event source mapping; "s3" / "events": a shadow queue standing in for Lambda's own queue of
    # asynchronous invocations (local/wiring.py invokes each event as Lambda's async invoke does).
    kind: str  # "sqs" | "s3" | "events"
    queue_url: str
    queue_arn: str
    function: str  # logical id
    batch_size: int = 1
    max_concurrency: int = 2
    report_failures: bool = False


@dataclass
class LocalSchedule:
    """A schedule rule (`rate(...)`) targeting a function: the local runtime invokes it on a timer."""

    rule_arn: str
    function: str  # logical id
    seconds: int


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(second|minute|hour|day)s?\s*\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """`rate(5 minutes)` -> 300; anything else (cron(...)) is not supported locally and raises."""
    match = _RATE.match(expression.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"unsupported schedule expression {expression!r}: the local runtime runs rate(N unit) only")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass
class Topology:
    """What the local wiring needs to know about the created resources."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    mappings: list[QueueMapping] = field(default_factory=list)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> {url, arn, attributes}
    buckets: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    state_machine_definitions: dict[str, str] = field(default_factory=dict)
    buses: dict[str, str] = field(default_factory=dict)
    schedules: list[LocalSchedule] = field(default_factory=list)


def _name(logical_id: str, limit: int = 63) -> str:
    return f"{PREFIX}-{re.sub(r'[^a-z0-9-]', '', logical_id.lower())}"[:limit]


def local_name(logical_id: str) -> str:
    """The name a template resource (a queue, a table, a function) has in the local runtime."""
    return _name(logical_id)


def _dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


class ResourceBuilder:
    """Builds the local resources through boto3 clients pointed at the emulation."""

    def __init__(self, template: dict[str, Any], clients: Any, local_visibility_timeout: int) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.c = clients
        self.visibility = local_visibility_timeout
        self.topology = Topology()
        self.refs: dict[str, Any] = {}
        self.arns: dict[str, str] = {}
        self.resolve = Resolver(
            self.refs,
            self._attr,
            {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": "BulkApi",
                "AWS::NoValue": "",
            },
        )

    def of_type(self, *types: str) -> list[tuple[str, dict[str, Any]]]:
        """Resources of the given CloudFormation types, in template order."""
        return [(k, r) for k, r in self.resources.items() if r["Type"] in types]

    def _attr(self, logical_id: str, attr: str) -> Any:
        if attr == "Arn":
            return self.arns[logical_id]
        if attr == "QueueUrl":
            return self.refs[logical_id]
        if attr == "QueueName":
            return self.topology.queues[logical_id]["name"]
        if attr == "Name":
            return self.refs[logical_id]
        if attr == "StreamArn":
            return self.arns[logical_id] + "/stream/local"
        raise KeyError(f"unsupported Fn::GetAtt {logical_id}.{attr}")

    def build(self) -> Topology:
        """Create everything, in dependency order, and return the topology."""
        self._plan_names()
        self._buckets()
        self._tables()
        self._secrets()
        self._queues()
        self._buses()
        self._functions()
        self._async_configs()
        self._state_machines()
        self._event_source_mappings()
        self._bucket_notifications()
        self._rules()
        return self.topology

    def _plan_names(self) -> None:
        # Names and ARNs are known before anything exists, so references resolve in any order.
        for lid, res in self.resources.items():
            t, name = res["Type"], _name(lid)
            if t == "AWS::S3::Bucket":
                self.refs[lid], self.arns[lid] = name, f"arn:aws:s3:::{name}"
            elif t in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
                self.refs[lid], self.arns[lid] = name, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            elif t == "AWS::SQS::Queue":
                self.refs[lid] = f"__queue_url__{lid}"
                self.arns[lid] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
                self.topology.queues[lid] = {"name": name, "arn": self.arns[lid]}
            elif t == "AWS::Events::EventBus":
                self.refs[lid], self.arns[lid] = name, f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
            elif t == "AWS::Lambda::Function":
                self.refs[lid], self.arns[lid] = name, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            elif t == "AWS::StepFunctions::StateMachine":
                arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
                self.refs[lid], self.arns[lid] = arn, arn
            elif t == "AWS::IAM::Role":
                self.refs[lid], self.arns[lid] = name, f"arn:aws:iam::{ACCOUNT}:role/{name}"
            else:
                self.refs[lid], self.arns[lid] = name, f"arn:aws:local:{REGION}:{ACCOUNT}:{name}"

    def _buckets(self) -> None:
        for lid, _ in self.of_type("AWS::S3::Bucket"):
            self.c("s3").create_bucket(Bucket=self.refs[lid])
            self.topology.buckets[lid] = self.refs[lid]

    def _tables(self) -> None:
        for lid, res in self.of_type("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            props = res["Properties"]
            kwargs: dict[str, Any] = {
                "TableName": self.refs[lid],
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            gsis = props.get("GlobalSecondaryIndexes") or []
            if gsis:
                kwargs["GlobalSecondaryIndexes"] = [
                    {
                        "IndexName": g["IndexName"],
                        "KeySchema": g["KeySchema"],
                        "Projection": g.get("Projection", {"ProjectionType": "ALL"}),
                    }
                    for g in gsis
                ]
            self.c("dynamodb").create_table(**kwargs)
            self.topology.tables[lid] = self.refs[lid]

    def _secrets(self) -> None:
        # Ref of a secret is its ARN, which Secrets Manager makes up (a random suffix): known only once created.
        for lid, res in self.of_type("AWS::SecretsManager::Secret"):
            secret_string = res["Properties"].get("SecretString")
            created = self.c("secretsmanager").create_secret(
                Name=self.refs[lid], SecretString=secret_string if isinstance(secret_string, str) else "{}"
            )
            self.refs[lid] = self.arns[lid] = created["ARN"]

    def _queues(self) -> None:
        sqs = self.c("sqs")
        queues = self.of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy names its target's ARN.
        queues.sort(key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))
        for lid, res in queues:
            props = self.resolve(res.get("Properties", {}))
            deployed_visibility = int(props.get("VisibilityTimeout", 30))
            attributes = {"VisibilityTimeout": str(min(deployed_visibility, self.visibility))}
            if "RedrivePolicy" in props:
                attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            url = sqs.create_queue(QueueName=self.topology.queues[lid]["name"], Attributes=attributes)["QueueUrl"]
            self.refs[lid] = url
            self.topology.queues[lid].update(
                {
                    "url": url,
                    "deployed_visibility_timeout": deployed_visibility,
                    "redrive_policy": props.get("RedrivePolicy"),
                }
            )

    def _shadow_queue(self, name: str) -> tuple[str, str]:
        qname = _name(f"shadow-{name}", 80)
        url = self.c("sqs").create_queue(QueueName=qname, Attributes={"VisibilityTimeout": str(self.visibility)})[
            "QueueUrl"
        ]
        return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{qname}"

    def _buses(self) -> None:
        for lid, _ in self.of_type("AWS::Events::EventBus"):
            self.c("events").create_event_bus(Name=self.refs[lid])
            self.topology.buses[lid] = self.refs[lid]

    def _functions(self) -> None:
        role = self.c("iam").create_role(
            RoleName=f"{PREFIX}-lambda", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        code = _dummy_zip()
        for lid, res in self.of_type("AWS::Lambda::Function"):
            props = res["Properties"]
            handler = str(props.get("Handler", ""))
            env = {k: str(v) for k, v in self.resolve(props.get("Environment", {}).get("Variables", {})).items()}
            # The function exists in the emulation so Step Functions can invoke it; the call is routed to the
            # real handler in-process by local/lambdas.py.
            self.c("lambda").create_function(
                FunctionName=self.refs[lid],
                Runtime="python3.12",
                Role=role,
                Handler="index.handler",
                Code={"ZipFile": code},
                Timeout=int(props.get("Timeout", 3)),
            )
            dead_letter = self.resolve(props.get("DeadLetterConfig", {})).get("TargetArn")
            self.topology.functions[lid] = LocalFunction(
                lid,
                self.refs[lid],
                handler,
                env,
                int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                asynchronous=AsyncConfig(dead_letter=dead_letter or None),
            )

    def _async_configs(self) -> None:
        for _, res in self.of_type("AWS::Lambda::EventInvokeConfig"):
            props = self.resolve(res["Properties"])
            config = self.topology.functions[self._function_of(props["FunctionName"])].asynchronous
            config.max_retries = int(props.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
            config.max_event_age = int(props.get("MaximumEventAgeInSeconds", DEFAULT_ASYNC_EVENT_AGE))
            config.on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") or None

    def _state_machines(self) -> None:
        role = f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-states"
        for lid, res in self.of_type("AWS::StepFunctions::StateMachine"):
            definition = self.resolve(res["Properties"]["DefinitionString"])
            self.c("stepfunctions").create_state_machine(
                name=_name(lid, 80), definition=definition, roleArn=role, type="STANDARD"
            )
            self.topology.state_machines[lid] = self.arns[lid]
            self.topology.state_machine_definitions[lid] = definition

    def _function_of(self, arn_or_name: str) -> str:
        for lid, fn in self.topology.functions.items():
            if arn_or_name in (fn.name, self.arns[lid]):
                return lid
        raise KeyError(f"no function {arn_or_name}")

    def _event_source_mappings(self) -> None:
        for _, res in self.of_type("AWS::Lambda::EventSourceMapping"):
            props = self.resolve(res["Properties"])
            source_arn = props["EventSourceArn"]
            queue_lid = next(lid for lid, q in self.topology.queues.items() if q["arn"] == source_arn)
            self.topology.mappings.append(
                QueueMapping(
                    kind="sqs",
                    queue_url=self.refs[queue_lid],
                    queue_arn=source_arn,
                    function=self._function_of(props["FunctionName"]),
                    batch_size=int(props.get("BatchSize", 10)),
                    max_concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                    report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                )
            )

    def _bucket_notifications(self) -> None:
        # moto cannot invoke a Lambda from S3 without Docker; its S3 -> SQS delivery works, filters included.
        for lid, res in self.of_type("Custom::S3BucketNotifications"):
            props = self.resolve(res["Properties"])
            config = props["NotificationConfiguration"]
            queue_configs = []
            for i, cfg in enumerate(config.get("LambdaFunctionConfigurations", [])):
                fn = self._function_of(cfg["LambdaFunctionArn"])
                url, arn = self._shadow_queue(f"{lid}-{i}")
                queue_configs.append({"QueueArn": arn, "Events": cfg["Events"], "Filter": cfg.get("Filter", {})})
                self.topology.mappings.append(
                    QueueMapping(kind="s3", queue_url=url, queue_arn=arn, function=fn, batch_size=1, max_concurrency=2)
                )
            self.c("s3").put_bucket_notification_configuration(
                Bucket=props["BucketName"], NotificationConfiguration={"QueueConfigurations": queue_configs}
            )

    def _rules(self) -> None:
        # A Lambda ARN as a rule target makes moto's PutEvents answer 500: target a shadow queue instead.
        events = self.c("events")
        for lid, res in self.of_type("AWS::Events::Rule"):
            props = self.resolve(res["Properties"])
            bus = props.get("EventBusName", "default")
            rule = _name(lid, 64)
            if "ScheduleExpression" in props and "EventPattern" not in props:
                seconds = rate_seconds(props["ScheduleExpression"])
                rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"
                for target in props.get("Targets", []):
                    self.topology.schedules.append(LocalSchedule(rule_arn, self._function_of(target["Arn"]), seconds))
                continue
            events.put_rule(
                Name=rule, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]), State="ENABLED"
            )
            targets = []
            for target in props.get("Targets", []):
                fn = self._function_of(target["Arn"])
                url, arn = self._shadow_queue(f"{lid}-{target['Id']}")
                targets.append({"Id": target["Id"], "Arn": arn})
                self.topology.mappings.append(
                    QueueMapping(
                        kind="events", queue_url=url, queue_arn=arn, function=fn, batch_size=1, max_concurrency=2
                    )
                )
            events.put_targets(Rule=rule, EventBusName=bus, Targets=targets)


# Resource types the local runtime creates or wires (above), and those it has no need of: what they do deployed (logs,
# alarms, the gateway's settings, the web ACL) is not part of what a function can observe locally.
RUNS = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SecretsManager::Secret",
        "AWS::SQS::Queue",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
        "AWS::Lambda::Function",
        "AWS::Lambda::EventSourceMapping",
        "AWS::StepFunctions::StateMachine",
        "Custom::S3BucketNotifications",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Authorizer",
    }
)
NOT_NEEDED_PREFIXES = (
    "AWS::Logs::",
    "AWS::CloudWatch::",
    "AWS::SNS::",
    "AWS::WAFv2::",
    "AWS::ApiGateway::",
    "AWS::Lambda::Permission",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::CDK::Metadata",
)


def check_template(template: dict[str, Any]) -> None:
    """Refuse a template the local runtime cannot run faithfully, naming the resource and the reason."""
    from local.iam import TemplateError, function_roles

    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise TemplateError("the template has no Resources")
    for lid, res in resources.items():
        kind = str(res.get("Type", ""))
        if kind not in RUNS and not kind.startswith(NOT_NEEDED_PREFIXES):
            raise TemplateError(f"{lid}: the resource type {kind} is not emulated by the local runtime")
        props = res.get("Properties", {})
        if kind == "AWS::StepFunctions::StateMachine":
            definition = props.get("DefinitionString")
            if definition is None:
                raise TemplateError(f"{lid}: a state machine without DefinitionString (S3 definitions are not run)")
            if "JSONata" in json.dumps(definition):
                raise TemplateError(f"{lid}: JSONata state machines are not run by moto's executor (use JSONPath)")
        if kind == "AWS::Events::Rule" and "ScheduleExpression" in props and "EventPattern" not in props:
            try:
                rate_seconds(str(props["ScheduleExpression"]))
            except ValueError as exc:
                raise TemplateError(f"{lid}: {exc}") from exc
    function_roles(template)
