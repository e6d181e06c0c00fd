"""Celery tasks: each takes ids or nothing, fetches, and calls a service."""
