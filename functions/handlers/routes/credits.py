"""An account's credits: the balance and the ledger, a page at a time."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from functions.handlers.routes.deps import CURSOR_MAX, account, deps, json_answer
from functions.http.resolver import RequestRouter
from functions.logic import ledger
from functions.models import CreditsResponse

router = RequestRouter()

LEDGER_PAGE_MAX = 1000


@router.get("/api/credits", summary="Balance and ledger, a page at a time", tags=["credits"])
def credits(
    limit: Annotated[int, Query(ge=1, le=LEDGER_PAGE_MAX, description="entries per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX, description="`next_cursor` of the last page")] = None,
) -> Response[CreditsResponse]:
    """The account's balance and its credit movements, newest first; follow `next_cursor` to read every entry."""
    return json_answer(200, ledger.page(deps().credits, account(), limit, cursor))
