"""The peer wire protocol: signing, sealing, the wire bodies, and the clients that speak it."""
