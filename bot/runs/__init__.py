"""Runs: every change opsbot makes to infrastructure — a built-in action or a catalog runbook — planned, approved,
executed under leases, undone in reverse and resumed after a crash by one engine.

`models` holds the records, `states` the transition tables the store enforces, `policy` who may request and
approve, `requests` plan → request → decide → expire, `execution` run under leases → hand over / recover,
`runbook_plans` and `follow_ups` the runs built from runbooks and from stopped runs, `outcomes` every ending as a
value, `engine` the steps in order, `steps` what each step kind does, `effects` what a failed step's effect allows.
Executors (bot/executors) do the work; this package decides whether and when.
"""
