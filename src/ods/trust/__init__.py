"""Origin signatures: who vouches for a package, a stage change or a delete.

Every server has an Ed25519 key. The server that accepts an upload signs a
statement of the package; the server whose admin promotes or deletes one
signs that too. Statements travel with the package through the mesh
unchanged, and every server checks them before it publishes, promotes or
deletes: a relay can withhold a package, never alter or invent one.
"""
