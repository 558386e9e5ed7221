"""Webhooks: events posted to an address, signed (`ods`) or for Slack and Teams."""
