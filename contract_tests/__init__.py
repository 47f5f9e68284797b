"""The contract suite: one set of checks for the mock and for the live providers.

Tests see a `Target` (where to send, which key, which dialect) and the JSON Schemas under
`schemas/`, nothing of the mock's internals, so the same run works against a live endpoint with
`--live`. See `conftest.py` for the options and the "Contract tests" section of the README for
how to run it.
"""
