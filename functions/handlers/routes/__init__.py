"""The api function's routes, one Powertools `Router` per feature; `handlers/api.py` includes them."""
