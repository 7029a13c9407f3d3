"""Customer tools for the bulkapi HTTP API: the `bulkapi jobs|lookup|search|credits|webhooks` commands."""
