"""Imported by the fork server that function processes are forked from (local/processes.py PRELOAD): what every
function process needs before its first event, loaded once per runtime instead of once per process."""

from __future__ import annotations

from local import lambdas

lambdas.preload()
