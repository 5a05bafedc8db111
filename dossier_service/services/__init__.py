"""Domain services: plain functions over a session and an identity; no Flask imports."""
