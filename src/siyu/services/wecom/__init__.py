"""WeCom use cases: per-brand configuration, callbacks (receive → store → process), contact sync."""
