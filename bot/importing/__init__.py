"""`opsbot import`: a team's Markdown runbook read into a catalog draft — services with their checks, targets and
backups, runbooks, schedules — every element with its provenance and confidence, and a report of what became what.

Not responsible for validating the draft (the catalog loader does) nor for running anything: commands are parsed,
never executed, and nothing connects anywhere.
"""
