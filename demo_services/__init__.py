"""Demo internal services (user, order, recommendation, catalog) for tests and benchmarks."""
