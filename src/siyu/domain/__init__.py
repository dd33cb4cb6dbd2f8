"""siyu.domain."""
