"""Executors: the adapters that change infrastructure (restart, roll back, back up, restore).

One module per kind of target, each implementing a Protocol from `base.py`; the actions domain composes them.
"""
