"""Powertools logger, tracer and metrics, shared by every function (each sets its own service name)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "bulkapi"

logger = Logger(service="bulkapi")
tracer = Tracer(service="bulkapi")
metrics = Metrics(namespace=NAMESPACE, service="bulkapi")
