"""Integrations with other systems: Jamf Pro package records."""
