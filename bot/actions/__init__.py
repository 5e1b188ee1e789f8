"""Actions: restart, backup, restore and rollback requested from Slack, approved by a second person, run once.

`models` holds the records, `policy` who may request and approve, `service` the flows, `progress` the live
step reporting. Executors (bot/executors) do the work; this package decides whether and when.
"""
