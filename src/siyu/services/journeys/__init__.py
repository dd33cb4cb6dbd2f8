"""Journeys (SOP / 客户旅程): saved definitions, triggers, the exactly-once executor, effects, staff tasks, stats.

Modules: ``definitions`` (CRUD, publish, pause), ``entries`` (entering, re-entry), ``triggers``, ``executor``
(``run_due``), ``effects`` (delivery by idempotency key), ``senders`` (the ``Sender`` protocol), ``tasks``
(guide tasks), ``stats``, ``scheduled`` (``tick``, queued on Huey every minute). See docs/journeys.md.
"""
