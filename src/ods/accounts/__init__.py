"""Users, roles, passwords, login tokens and API tokens."""
