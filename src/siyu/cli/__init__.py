"""siyu.cli."""
