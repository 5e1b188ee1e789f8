"""Alerts from Alertmanager and Grafana into Slack: payloads, routing, storage outcomes, the group's message and its
buttons. Importing this package loads nothing; each module is imported by name."""
