"""siyu.stores."""
