"""This server: its identity and settings (/about) and its system figures."""
