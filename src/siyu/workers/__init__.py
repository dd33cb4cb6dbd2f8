"""siyu.workers."""
