"""Real programs on loopback for the end-to-end and browser tests: `ods serve`
(serve), meshes of them (mesh), Nginx (nginx), redis-server (redis_server) and a
TCP proxy that can stall (proxy)."""
