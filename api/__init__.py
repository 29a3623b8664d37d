"""The doors over HTTP: the GraphQL endpoint, request limits, tokens, error masking, health."""
