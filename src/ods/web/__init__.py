"""The HTTP edge every feature shares: dependencies, the error shape, health, metrics, console."""
