"""StackConfig: context keys, as cdk.json and `-c key=value` give them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import StackConfig


def test_cli_strings_are_parsed_like_cdk_json_values() -> None:
    # `-c` values always arrive as strings
    config = StackConfig.model_validate(
        {"worker_max_concurrency": "20", "deletion_protection": "false", "cors_origins": "https://a.example, https://b"}
    )
    assert config.worker_max_concurrency == 20 and config.deletion_protection is False
    assert config.cors_origins == ["https://a.example", "https://b"]


def test_a_misspelt_key_fails_instead_of_being_ignored() -> None:
    with pytest.raises(ValueError, match="bulkapi:workerMaxConcurency"):
        StackConfig.check_keys({"bulkapi:workerMaxConcurency": 5, "@aws-cdk/core:checkSecretUsage": True})


def test_limits_that_would_break_the_pipeline_are_refused() -> None:
    with pytest.raises(ValidationError):
        StackConfig(max_receive_count=2)
    with pytest.raises(ValidationError):
        StackConfig(worker_batch_size=11)


def test_alarm_email_must_be_an_address_and_empty_means_none() -> None:
    assert StackConfig.model_validate({"alarm_email": ""}).alarm_email is None
    assert StackConfig.model_validate({"alarm_email": "ops@example.com"}).alarm_email == "ops@example.com"
    with pytest.raises(ValidationError):
        StackConfig.model_validate({"alarm_email": "ops"})


def test_one_account_may_never_hold_every_fetch() -> None:
    # A per-account share of the fetches below their total is a setting like any other
    assert (
        StackConfig.model_validate({"fetch_concurrency": "8", "fetch_concurrency_per_account": "3"}).fetch_concurrency
        == 8
    )
    # But a share that lets one account take every fetch slot is refused, naming both keys
    with pytest.raises(ValidationError, match="bulkapi:fetchConcurrencyPerAccount"):
        StackConfig(fetch_concurrency=5, fetch_concurrency_per_account=5)
