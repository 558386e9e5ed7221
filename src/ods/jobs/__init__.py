"""Background jobs: typed kinds, the registry, the runner with retries, queues, `ods worker`."""
