"""siyu.console."""
