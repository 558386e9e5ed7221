"""Peers: registration (both sides), links and their health, checking signed requests."""
