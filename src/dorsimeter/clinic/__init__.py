"""A clinic or a team: rigs publish their sessions to an MQTT broker (Mosquitto) from an outbox in
their SQLite history, an ingest upserts them into PostgreSQL, a coach page reads it.

Each rig stays offline-first: its history is the source of truth and nothing here is needed for
a single rig (the CLI imports this package only for ``publish``, ``ingest`` and ``team``).
See docs/clinic.md for the deployment.
"""
