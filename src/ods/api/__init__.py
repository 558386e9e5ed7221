"""HTTP routers: thin layers that parse, authorise, call the domain, and answer."""
