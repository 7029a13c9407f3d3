"""Accounts and API keys on the jobs table: keys are stored as their hash, with a key-id record to revoke them by."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.credits import ledger_put
from functions.adapters.table import des, is_conditional, ser
from functions.errors import StoreError


def key_hash(api_key: str) -> str:
    """API keys are stored as their SHA-256, never as themselves."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class AccountStore:
    """Accounts (pk ACCOUNT#id, sk ACCOUNT), keys by hash (KEY#hash) and by id (KEYID#id)."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

    def put_api_key(self, api_key: str, account_id: str, key_id: str, now: str) -> None:
        """Store an API key as its hash, plus a key-id record so it can be revoked without knowing the key."""
        hashed = key_hash(api_key)
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser(
                            {
                                "pk": f"KEY#{hashed}",
                                "sk": "KEY",
                                "account_id": account_id,
                                "key_id": key_id,
                                "key_created_at": now,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": ser(
                            {
                                "pk": f"KEYID#{key_id}",
                                "sk": "KEYID",
                                "key_hash": hashed,
                                "owner": account_id,
                                "key_created_at": now,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    def revoke_api_key(self, key_id: str, now: str) -> str | None:
        """Revoke a key by its id; returns the account it belonged to, or None when there is no such key."""
        resp = self.ddb.get_item(TableName=self.table, Key=ser({"pk": f"KEYID#{key_id}", "sk": "KEYID"}))
        item = resp.get("Item")
        if not item:
            return None
        hashed = item["key_hash"]["S"]
        self.ddb.update_item(
            TableName=self.table,
            Key=ser({"pk": f"KEY#{hashed}", "sk": "KEY"}),
            UpdateExpression="SET revoked_at = :now",
            ExpressionAttributeValues=ser({":now": now}),
        )
        self.ddb.update_item(
            TableName=self.table,
            Key=ser({"pk": f"KEYID#{key_id}", "sk": "KEYID"}),
            UpdateExpression="SET revoked_at = :now",
            ExpressionAttributeValues=ser({":now": now}),
        )
        return str(item["owner"]["S"])

    def create_account(self, account_id: str, name: str, credits: int, now: str) -> bool:
        """A new account with a starting balance (and its ledger entry); False if the id exists."""
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": ser(
                                {
                                    "pk": f"ACCOUNT#{account_id}",
                                    "sk": "ACCOUNT",
                                    "id": account_id,
                                    "name": name,
                                    "credits": credits,
                                    "account_created_at": now,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    ledger_put(self.table, account_id, "-", "grant", credits, now),
                ]
            )
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not create the account") from exc
        return True

    def _scan(self, filter_expression: str, values: dict[str, Any], names: dict[str, str] | None = None) -> list[Any]:
        # Admin listings only (no request path scans): accounts and keys have no index of their own.
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": filter_expression,
            "ExpressionAttributeValues": ser(values),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        items: list[Any] = []
        try:
            for page in self.ddb.get_paginator("scan").paginate(**kwargs):
                items += [des(item) for item in page.get("Items", [])]
        except ClientError as exc:
            raise StoreError("could not list the table") from exc
        return items

    def list_accounts(self) -> list[dict[str, Any]]:
        """Every account: id, name, balance, creation time."""
        return [
            {
                "account_id": item["id"],
                "name": item.get("name"),
                "credits": item.get("credits"),
                "created_at": item.get("account_created_at"),
            }
            for item in self._scan("sk = :sk AND begins_with(pk, :prefix)", {":sk": "ACCOUNT", ":prefix": "ACCOUNT#"})
        ]

    def list_keys(self, account_id: str) -> list[dict[str, Any]]:
        """An account's keys by id (never the key or its hash), with creation and revocation times."""
        items = self._scan(
            "sk = :sk AND #owner = :account", {":sk": "KEYID", ":account": account_id}, {"#owner": "owner"}
        )
        return [
            {
                "key_id": str(item["pk"]).removeprefix("KEYID#"),
                "created_at": item.get("key_created_at"),
                "revoked_at": item.get("revoked_at"),
            }
            for item in items
        ]

    def account_for_key(self, api_key: str) -> str | None:
        """The account id an API key belongs to, or None when it is unknown or revoked."""
        resp = self.ddb.get_item(TableName=self.table, Key=ser({"pk": f"KEY#{key_hash(api_key)}", "sk": "KEY"}))
        item = resp.get("Item")
        if not item or "revoked_at" in item:
            return None
        return str(item["account_id"]["S"])
