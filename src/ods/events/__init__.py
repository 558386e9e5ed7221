"""The event log: a typed catalogue of event kinds, recording, the list and the live stream."""
