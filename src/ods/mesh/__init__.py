"""Servers registered with each other.

The peer protocol, registration, pushing and fetching packages, tombstones
and reconciliation.
"""
