"""Operational state (brands, users, write keys, import jobs) in SQLAlchemy: SQLite or PostgreSQL."""
