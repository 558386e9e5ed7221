"""The shared core: settings, the running context, the database, auth, errors, files.

It imports no web framework and nothing above it (checked by import-linter).
"""
