"""Stack configuration from CDK context (`cdk.json` plus `-c key=value`)."""

from __future__ import annotations

from typing import Any

from constructs import Node
from pydantic import BaseModel, Field


class StackConfig(BaseModel):
    """Everything an operator can set at deploy time; defaults are in cdk.json."""

    stage: str = "prod"
    max_rows_per_job: int = Field(default=10_000, ge=1)
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    rows_per_batch: int = Field(default=500, ge=1)
    worker_batch_size: int = Field(default=4, ge=1, le=10)
    worker_max_concurrency: int = Field(default=10, ge=2, le=1000)
    worker_timeout_seconds: int = Field(default=120, ge=10, le=900)
    max_receive_count: int = Field(default=5, ge=5)
    retention_days: int = Field(default=30, ge=1)
    log_retention_days: int = Field(default=30, ge=1)
    deletion_protection: bool = True

    @classmethod
    def from_node(cls, node: Node) -> StackConfig:
        """Read `bulkapi:<camelCase>` context keys."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            parts = name.split("_")
            key = "bulkapi:" + parts[0] + "".join(p.capitalize() for p in parts[1:])
            value = node.try_get_context(key)
            if value is not None:
                values[name] = value
        return cls.model_validate(values)
