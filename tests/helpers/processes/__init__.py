"""Real programs on loopback for the end-to-end and browser tests: `ods serve`
(serve), meshes of them (mesh), Nginx (nginx), redis-server (redis_server), a
TCP proxy that can stall (proxy), an HTTP proxy that tampers with answers
(tampering), a hostile peer (hostile_peer), and the resident memory of a
process watched from the test (memory)."""
