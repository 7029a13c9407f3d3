"""SQS variant requests -> a filtered, re-delimited or JSON Lines copy of a result, built by streaming."""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel

from functions.adapters.blobs import BlobStore
from functions.adapters.jobs import JobStore
from functions.composition import Function, Handler, sqs_handler
from functions.logic import variants
from functions.logic.ports import VariantBlobPort, VariantBuildStorePort
from functions.observability import logger, metrics
from functions.settings import VariantSettings


class VariantRequest(BaseModel):
    """What the API sends when a download asks for a variant that does not exist yet."""

    job_id: str
    variant: str


@dataclass(frozen=True)
class Deps:
    """What the variants function needs, built once per cold start."""

    store: VariantBuildStorePort
    blobs: VariantBlobPort

    @classmethod
    def from_settings(cls, settings: VariantSettings) -> Deps:
        """The real adapters."""
        return cls(JobStore(settings.jobs_table), BlobStore(settings.bucket))


def handler_for(deps: Deps) -> Handler:
    """The variants function composed with its dependencies."""

    def record_handler(record: SQSRecord) -> None:
        # One message = one variant to build; raising marks only this message as failed (it is retried).
        request = VariantRequest.model_validate_json(record.body)
        logger.append_keys(job_id=request.job_id)
        outcome = variants.build(request.job_id, request.variant, store=deps.store, blobs=deps.blobs)
        logger.info("variant request handled", variant=request.variant, outcome=outcome)
        if outcome == "built":
            metrics.add_metric(name="VariantsBuilt", unit="Count", value=1)

    return sqs_handler(record_handler)


lambda_handler = Function(VariantSettings, Deps.from_settings, handler_for)
