"""siyu.connectors."""
