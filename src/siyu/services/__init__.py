"""siyu.services."""
