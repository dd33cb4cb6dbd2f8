"""Analytics: metric and segment definitions as Ibis expressions (pure: they build expressions, never execute).

Every function here takes brand-filtered Ibis tables (``analytics.base.Tables``) and returns an Ibis expression,
so the same definition runs on DuckDB (embedded default) or any other Ibis backend (PySpark, Trino, ...).
No engine-specific SQL strings.  Services (``siyu.services.metrics``) execute them and shape the results.
"""
