"""Query, mutation and field resolvers; business rules live in `resolvers.services`."""
