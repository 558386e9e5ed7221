"""Email notifications: subscriptions, mails composed from events, sent over SMTP."""
