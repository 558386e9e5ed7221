"""Packages: streaming upload with hashing, publishing, listing, stage changes."""
