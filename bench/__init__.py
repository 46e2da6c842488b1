"""The benchmark (``make bench``): load generator, process management and scenarios."""
