"""siyu.api."""
