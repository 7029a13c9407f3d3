"""The online providers behind the lookups: HTTP and DNS clients, with their rate limits, retries and network guard.

The lookups in `functions/enrich` are pure (they validate, normalize and shape rows); they reach these providers only
through `functions.enrich.online.Sources`, which the composition roots build with `providers.sources.from_settings`.
`functions/logic` never imports this package (an import contract, tests/test_code_quality.py).
"""
