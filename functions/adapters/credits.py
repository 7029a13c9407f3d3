"""Credits on the jobs table: account balances, their ledger, and reservations (of a job's rows, or of an inline
request's values) refunded once when they are settled."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from functions.adapters.aws import client as aws_client
from functions.adapters.table import des, is_conditional, job_key, new_job_item, ser
from functions.errors import InsufficientCreditsError, StoreError
from functions.models import Job

# The sort keys of an account's ledger entries: LEDGER#<at>#<job or request>#<kind>, so newest first is one query.
LEDGER_PREFIX = "LEDGER#"


def ledger_put(
    table: str, account_id: str, ref: str, kind: str, amount: int, now: str, request_id: str | None = None
) -> dict[str, Any]:
    """The transaction item writing one ledger entry (each is written once, with the move of credits it records)."""
    # `ref` is the job id, or for an inline request its request id (the entry then has no job).
    entry: dict[str, Any] = {
        "pk": f"ACCOUNT#{account_id}",
        "sk": f"{LEDGER_PREFIX}{now}#{ref}#{kind}",
        "kind": kind,
        "amount": amount,
        "at": now,
    }
    if ref not in ("-", request_id):
        entry["job_id"] = ref
    if request_id:
        entry["request_id"] = request_id
    return {"Put": {"TableName": table, "Item": ser(entry), "ConditionExpression": "attribute_not_exists(pk)"}}


class CreditStore:
    """Balances move only in transactions with their ledger entry; a balance never goes below zero."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.ddb = client or aws_client("dynamodb")

    def account_credits(self, account_id: str) -> int | None:
        """The account's balance, or None when the account does not exist."""
        resp = self.ddb.get_item(
            TableName=self.table, Key=ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}), ConsistentRead=True
        )
        item = resp.get("Item")
        return int(item["credits"]["N"]) if item else None

    def ledger(self, account_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The account's most recent credit movements, newest first."""
        return self.ledger_page(account_id, limit)[0]

    def ledger_page(
        self, account_id: str, limit: int = 50, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the account's credit movements, newest first, from after the sort key `after`; and the sort key
        to continue from (None on the last page)."""
        options: dict[str, Any] = {"Limit": limit}
        if after is not None:
            options["ExclusiveStartKey"] = ser({"pk": f"ACCOUNT#{account_id}", "sk": after})
        resp = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=ser({":pk": f"ACCOUNT#{account_id}", ":prefix": LEDGER_PREFIX}),
            ScanIndexForward=False,
            **options,
        )
        items = [des(item) for item in resp.get("Items", [])]
        fields = ("job_id", "request_id", "kind", "amount", "at")
        last = resp.get("LastEvaluatedKey")
        return [{k: item.get(k) for k in fields} for item in items], (des(last)["sk"] if last else None)

    # --- jobs: reserve when the rows are known, refund what was not used when the job ends ---------------------------
    def _debit(self, account_id: str, amount: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}),
                "UpdateExpression": "ADD #credits :minus",
                "ConditionExpression": "#credits >= :needed",
                "ExpressionAttributeNames": {"#credits": "credits"},
                "ExpressionAttributeValues": {":minus": {"N": str(-amount)}, ":needed": {"N": str(amount)}},
            }
        }

    def _raise_short(self, account_id: str, needed: int, exc: ClientError, what: str = "this job") -> None:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if (reasons and reasons[0] == "ConditionalCheckFailed") or not reasons:
            balance = self.account_credits(account_id) or 0
            raise InsufficientCreditsError(
                f"{what} needs {needed} credits, the balance is {balance}", required=needed, balance=balance
            ) from exc
        raise StoreError("could not reserve the credits") from exc

    def create_job_reserving(self, job: Job, now: str, request_id: str | None = None) -> None:
        """Store a new job and reserve its rows' credits in one transaction: a balance can never go below zero.

        Raises InsufficientCreditsError (402) when the balance does not cover `job.total_rows`.
        """
        needed = job.total_rows or 0
        job.credits_reserved = needed
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(job.account_id, needed),
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": new_job_item(job),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    ledger_put(self.table, job.account_id, job.id, "reserve", -needed, now, request_id),
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                self._raise_short(job.account_id, needed, exc)
            raise StoreError("could not store the job") from exc

    def reserve_for_job(self, job: Job, rows: int, now: str) -> None:
        """Reserve credits for a job created without them (a dropped, presigned or fetched file, once its rows are
        counted); the count becomes the job's `total_rows` in the same transaction."""
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(job.account_id, rows),
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": job_key(job.id),
                            "UpdateExpression": "SET credits_reserved = :n, total_rows = :n",
                            "ConditionExpression": "attribute_not_exists(credits_reserved) OR credits_reserved = :zero",
                            "ExpressionAttributeValues": {":n": {"N": str(rows)}, ":zero": {"N": "0"}},
                        }
                    },
                    ledger_put(self.table, job.account_id, job.id, "reserve", -rows, now),
                ]
            )
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return  # already reserved by an earlier delivery of the same event
            self._raise_short(job.account_id, rows, exc)

    def settle_credits(self, job: Job, now: str) -> bool:
        """Refund what was reserved but not used (invalid, error, cancelled, unprocessed rows), exactly once."""
        refund = max(0, job.credits_reserved - job.credits_used)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": job_key(job.id),
                    "UpdateExpression": "SET credits_settled = :t",
                    "ConditionExpression": "attribute_not_exists(credits_settled) OR credits_settled = :f",
                    "ExpressionAttributeValues": {":t": {"BOOL": True}, ":f": {"BOOL": False}},
                }
            }
        ]
        if refund:
            items.append(self._credit(job.account_id, refund))
            items.append(ledger_put(self.table, job.account_id, job.id, "refund", refund, now))
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if is_conditional(exc):
                return False
            raise StoreError("could not settle the credits") from exc
        return True

    # --- inline requests: reserve before the stream, refund what was not used when it ends ------------------------
    def reserve_inline(self, account_id: str, request_id: str, credits: int, now: str) -> None:
        """Take `credits` for an inline request in one transaction: the debit (never below zero), a `reserve`
        ledger entry and a reservation record that the refund consumes, so it is refunded at most once.

        Raises InsufficientCreditsError (402) when the balance does not cover them.
        """
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    self._debit(account_id, credits),
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": ser(
                                {
                                    "pk": f"ACCOUNT#{account_id}",
                                    "sk": f"INLINE#{request_id}",
                                    "reserved": credits,
                                    "at": now,
                                }
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    ledger_put(self.table, account_id, request_id, "reserve", -credits, now, request_id),
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                self._raise_short(account_id, credits, exc, what="this request")
            raise StoreError("could not reserve the credits") from exc

    def settle_inline(self, account_id: str, request_id: str, reserved: int, used: int, now: str) -> int:
        """Give back `reserved - used` once (the reservation record goes in the same transaction); the refund."""
        refund = max(0, reserved - used)
        items: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": ser({"pk": f"ACCOUNT#{account_id}", "sk": f"INLINE#{request_id}"}),
                    "ConditionExpression": "reserved = :reserved",
                    "ExpressionAttributeValues": {":reserved": {"N": str(reserved)}},
                }
            }
        ]
        if refund:
            items.append(self._credit(account_id, refund))
            items.append(ledger_put(self.table, account_id, request_id, "refund", refund, now, request_id))
        try:
            self.ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if is_conditional(exc):
                return 0  # already settled
            raise StoreError("could not refund the credits") from exc
        return refund

    def grant_credits(self, account_id: str, credits: int, now: str, request_id: str | None = None) -> None:
        """Add credits to an existing account, with its `grant` ledger entry."""
        grant = self._credit(account_id, credits)
        grant["Update"]["ConditionExpression"] = "attribute_exists(pk)"
        try:
            self.ddb.transact_write_items(
                TransactItems=[grant, ledger_put(self.table, account_id, "-", "grant", credits, now, request_id)]
            )
        except ClientError as exc:
            if is_conditional(exc):
                raise StoreError(f"no account {account_id}") from exc
            raise StoreError("could not grant the credits") from exc

    def _credit(self, account_id: str, amount: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": ser({"pk": f"ACCOUNT#{account_id}", "sk": "ACCOUNT"}),
                "UpdateExpression": "ADD #credits :amount",
                "ExpressionAttributeNames": {"#credits": "credits"},
                "ExpressionAttributeValues": {":amount": {"N": str(amount)}},
            }
        }
