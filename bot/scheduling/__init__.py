"""Scheduled work: cron schedules with their own time zone, the jobs the catalog asks for, and the scheduler
that runs each occurrence exactly once across replicas. Digest contents live in bot/digests.py."""
