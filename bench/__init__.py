"""Usage-import benchmark: realistic sacct output and a timed import into PostgreSQL."""
