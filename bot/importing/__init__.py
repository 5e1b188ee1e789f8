"""`opsbot import`: a team's Markdown runbook read into a catalog `runbooks:` draft and a report of what became what.

Not responsible for validating the draft (the catalog loader does) nor for running anything: commands are parsed,
never executed.
"""
