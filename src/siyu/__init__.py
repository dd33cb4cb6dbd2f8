"""siyu (私域): private-domain customer operations."""
