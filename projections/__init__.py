"""Read models derived from the hub's event streams, and the pure helpers they use."""
