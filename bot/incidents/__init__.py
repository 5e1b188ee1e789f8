"""Incidents: declared in Slack, run in their own channel, with a timeline that writes the post-mortem.

`models` holds the records, `settings` the catalog's incident section, `service` the flows, `timeline` the
entries and metrics, `postmortem` the document, `reminders` what nags when nobody acts.
"""
