"""Benchmarks of the dossier service, run by hand against a real server (not part of CI)."""
