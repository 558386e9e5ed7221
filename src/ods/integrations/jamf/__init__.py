"""Package records in Jamf Pro: settings, the Jamf Pro API client, sync jobs, reconcile."""
