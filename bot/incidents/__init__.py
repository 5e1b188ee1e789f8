"""Incidents: declared in Slack, run in their own channel, with a timeline that writes the post-mortem.

`models` holds the records, `settings` the catalog's incident section, `service` the flows, `timeline` the
entries, `metrics` the durations, `postmortem` and `documents` the post-mortem, `reminders` what nags.
"""
