"""Operating the server: request ids and access logs, JSON logs, Prometheus metrics."""
