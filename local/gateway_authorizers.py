"""API Gateway's Lambda authorizers, locally: read from the synthesized template, run the same handler the same way.

For each request the gateway asks `LocalAuthorizers.authorize`: which method of the template's API the request reaches
(the most specific resource with a method for it, as API Gateway routes), which authorizer that method has, and what
that authorizer answers. The authorizer function is invoked with the REQUEST event API Gateway sends (headers, path,
methodArn, request context); its policy is evaluated against the method ARN; its answer is cached for the
authorizer's TTL, keyed on its identity sources (the Authorization header), exactly as deployed. A request without
an identity source, a Deny, or a failing authorizer gets the template's gateway response for it (status and body).

Methods with a MOCK integration (the CORS preflights the stack adds when `bulkapi:corsOrigins` is set) are answered
by the gateway itself, as API Gateway does: the integration response's status and static headers, and the
Access-Control-Allow-Origin override its response template makes for the request's Origin.

What is not emulated: API keys and usage plans (throttling per account), stage throttling, and WAF.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.http.access import REQUEST_CONTEXT_HEADER
from local.resources import ACCOUNT, REGION

Invoke = Callable[[str, dict[str, Any]], Any]
API_ID = "local"
# API Gateway's own answers when a template defines none for the type.
DEFAULT_ANSWERS = {
    "UNAUTHORIZED": (401, {"message": "Unauthorized"}),
    "ACCESS_DENIED": (403, {"message": "User is not authorized to access this resource"}),
    "AUTHORIZER_FAILURE": (500, {"message": None}),
}


@dataclass(frozen=True)
class Authorizer:
    """A REQUEST authorizer of the template: its function, identity headers and cache TTL."""

    logical_id: str
    function: str
    identity_headers: tuple[str, ...]
    ttl_seconds: int


@dataclass(frozen=True)
class MockAnswer:
    """A MOCK integration's answer: its status, its static headers, and the origins for which its response template
    sets Access-Control-Allow-Origin to the request's Origin (how CDK's CORS preflight allows more than one)."""

    status: int
    headers: dict[str, str]
    echoed_origins: tuple[str, ...] = ()

    def answer(self, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """What the gateway answers this request."""
        out = dict(self.headers)
        origin = next((v for k, v in headers.items() if k.lower() == "origin"), "")
        if origin and origin in self.echoed_origins:
            out["Access-Control-Allow-Origin"] = origin
        return self.status, out, b""


@dataclass(frozen=True)
class Route:
    """One method of the API: resource path (may end in {proxy+}), HTTP method (or ANY), its authorizer, and its
    answer when the gateway gives it itself (a MOCK integration)."""

    path: str
    method: str
    authorizer: Authorizer | None
    mock: MockAnswer | None = None


@dataclass(frozen=True)
class Outcome:
    """Either the request goes on (with the authorizer's context, None when the method has no authorizer), or the
    gateway answers it itself (status, headers, body)."""

    context: dict[str, Any] | None = None
    answer: tuple[int, dict[str, str], bytes] | None = None


@dataclass
class LocalAuthorizers:
    """The template's routes, authorizers and gateway responses, and the authorizers' answer cache."""

    routes: list[Route]
    answers: dict[str, tuple[int, str]]
    stage: str = "local"
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_template(cls, template: Mapping[str, Any], function_ids: Mapping[str, str]) -> LocalAuthorizers:
        """Routes from the template's API methods; `function_ids` maps function logical ids to local names."""
        resources: dict[str, Any] = template["Resources"]
        of_type = {t: {k: r for k, r in resources.items() if r["Type"] == t} for t in _TYPES}
        authorizers = {
            lid: _authorizer(lid, r["Properties"], function_ids)
            for lid, r in of_type["AWS::ApiGateway::Authorizer"].items()
        }
        paths = resource_paths(of_type["AWS::ApiGateway::Resource"])
        routes = []
        for method in of_type["AWS::ApiGateway::Method"].values():
            props = method["Properties"]
            ref = props["ResourceId"]
            path = "/" if "Fn::GetAtt" in ref else paths[ref["Ref"]]
            auth_ref = props.get("AuthorizerId")
            authorizer = authorizers[auth_ref["Ref"]] if props.get("AuthorizationType") == "CUSTOM" else None
            routes.append(Route(path, props["HttpMethod"], authorizer, _mock(props.get("Integration") or {})))
        answers = {
            r["Properties"]["ResponseType"]: (
                int(r["Properties"].get("StatusCode", DEFAULT_ANSWERS.get(r["Properties"]["ResponseType"], (500,))[0])),
                str(r["Properties"].get("ResponseTemplates", {}).get("application/json", "")),
            )
            for r in of_type["AWS::ApiGateway::GatewayResponse"].values()
        }
        return cls(routes, answers)

    def override_ttl(self, seconds: int) -> None:
        """Cache every authorizer's answers this long instead (a local test knob; 0: no cache)."""
        self.routes = [
            Route(r.path, r.method, None if r.authorizer is None else _with_ttl(r.authorizer, seconds), r.mock)
            for r in self.routes
        ]

    def route(self, method: str, path: str) -> Route | None:
        """The method a request reaches: the most specific matching resource that has this method (or ANY)."""
        candidates = [r for r in self.routes if r.method in (method, "ANY") and _matches(r.path, path)]
        return max(candidates, key=lambda r: (_specificity(r.path), r.method != "ANY"), default=None)

    def authorize(self, method: str, path: str, headers: Mapping[str, str], source_ip: str, invoke: Invoke) -> Outcome:
        """Run the method's authorizer for this request (or its cached answer) and decide."""
        route = self.route(method, path)
        if route is not None and route.mock is not None:
            return Outcome(answer=route.mock.answer(headers))
        if route is None or route.authorizer is None:
            return Outcome()
        auth = route.authorizer
        lowered = {k.lower(): v for k, v in headers.items()}
        identity = tuple(lowered.get(h.lower(), "") for h in auth.identity_headers)
        if any(not value for value in identity):
            return Outcome(answer=self._answer("UNAUTHORIZED"))
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{self.stage}/{method}{path}"
        key = (auth.logical_id, identity)
        cacheable = auth.ttl_seconds > 0 and bool(auth.identity_headers)
        policy = self._cached(key, auth.ttl_seconds) if cacheable else None
        if policy is None:
            event = self.request_event(route, method, path, headers, method_arn, source_ip)
            try:
                policy = dict(invoke(auth.function, event))
            except Exception:
                return Outcome(answer=self._answer("AUTHORIZER_FAILURE"))
            if cacheable:
                with self._lock:
                    self._cache[key] = (self.clock(), policy)
        if not _allows(policy, method_arn):
            return Outcome(answer=self._answer("ACCESS_DENIED"))
        context = {k: v for k, v in (policy.get("context") or {}).items()}
        return Outcome(context={**context, "principalId": policy.get("principalId")})

    def request_event(
        self, route: Route, method: str, path: str, headers: Mapping[str, str], method_arn: str, source_ip: str
    ) -> dict[str, Any]:
        """The REQUEST authorizer event API Gateway sends for a REST API."""
        return {
            "type": "REQUEST",
            "methodArn": method_arn,
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {},
            "multiValueQueryStringParameters": {},
            "pathParameters": {},
            "stageVariables": {},
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "accountId": ACCOUNT,
                "apiId": API_ID,
                "identity": {"sourceIp": source_ip},
            },
        }

    def _cached(self, key: tuple[str, tuple[str, ...]], ttl: int) -> dict[str, Any] | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None or self.clock() - hit[0] >= ttl:
                self._cache.pop(key, None)
                return None
            return hit[1]

    def _answer(self, response_type: str) -> tuple[int, dict[str, str], bytes]:
        status, body = self.answers.get(response_type) or (
            DEFAULT_ANSWERS[response_type][0],
            json.dumps(DEFAULT_ANSWERS[response_type][1]),
        )
        return status, {"Content-Type": "application/json"}, body.encode()


def request_context_header(request_context: Mapping[str, Any]) -> tuple[str, str]:
    """What the Lambda Web Adapter adds to the request it makes to the app: the event's request context as JSON."""
    return REQUEST_CONTEXT_HEADER, json.dumps(request_context)


_TYPES = (
    "AWS::ApiGateway::Authorizer",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::GatewayResponse",
)


def _authorizer(lid: str, props: Mapping[str, Any], function_ids: Mapping[str, str]) -> Authorizer:
    uri = json.dumps(props["AuthorizerUri"])
    function = next((name for fid, name in function_ids.items() if f'"{fid}"' in uri), None)
    if function is None:
        raise ValueError(f"authorizer {lid}: no local function in its AuthorizerUri")
    sources = [s.strip() for s in str(props.get("IdentitySource") or "").split(",") if s.strip()]
    headers = tuple(s.removeprefix("method.request.header.") for s in sources if s.startswith("method.request.header."))
    return Authorizer(lid, function, headers, int(props.get("AuthorizerResultTtlInSeconds", 300)))


def _mock(integration: Mapping[str, Any]) -> MockAnswer | None:
    """The answer of a MOCK integration (its first integration response), or None for any other integration."""
    if integration.get("Type") != "MOCK":
        return None
    response = (integration.get("IntegrationResponses") or [{}])[0]
    prefix = "method.response.header."
    headers = {
        name.removeprefix(prefix): str(value).strip("'")
        for name, value in (response.get("ResponseParameters") or {}).items()
        if name.startswith(prefix) and isinstance(value, str) and value.startswith("'")
    }
    template = str((response.get("ResponseTemplates") or {}).get("application/json", ""))
    echoed: tuple[str, ...] = ()
    if "responseOverride.header.Access-Control-Allow-Origin = $origin" in template:
        echoed = tuple(re.findall(r'\$origin == "([^"]+)"', template))
    return MockAnswer(int(response.get("StatusCode", 200)), headers, echoed)


def _with_ttl(authorizer: Authorizer, seconds: int) -> Authorizer:
    return Authorizer(authorizer.logical_id, authorizer.function, authorizer.identity_headers, seconds)


def resource_paths(resources: Mapping[str, Any]) -> dict[str, str]:
    """Logical id of each API Gateway resource of a template -> its full path."""

    def path(lid: str) -> str:
        props = resources[lid]["Properties"]
        parent = props["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    return {lid: path(lid) for lid in resources}


def _matches(pattern: str, path: str) -> bool:
    if pattern.endswith("/{proxy+}"):
        base = pattern.removesuffix("{proxy+}")
        return path.startswith(base) and len(path) > len(base)
    return pattern.rstrip("/") == path.rstrip("/") or (pattern == "/" and path == "/")


def _specificity(pattern: str) -> tuple[int, int]:
    # A literal resource beats a greedy one; among greedy ones, the deeper one wins.
    return (0 if pattern.endswith("{proxy+}") else 1, pattern.count("/"))


def _allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    statements = (policy.get("policyDocument") or {}).get("Statement") or []
    allowed = False
    for statement in statements:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, str(r)) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
