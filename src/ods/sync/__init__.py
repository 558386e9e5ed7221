"""Mesh replication: peer registration, signed peer API, jobs, reconciliation."""
