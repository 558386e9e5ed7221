"""Notifications: webhooks and email, fed by the event log."""
