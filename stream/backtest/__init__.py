"""Backtest: replay event files or historical topics through candidate and baseline policies.

`run.run_policy` is the pure entry point (typed events in, decisions out, no I/O); `sources` reads
JSON Lines files and Kafka time ranges into typed events; `report` and `html` compare two runs;
`export` freezes a time range of the input topics into a JSON Lines file; `cli` is what the
`escalation backtest` and `escalation export` commands call.
"""
