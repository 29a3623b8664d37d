"""Strawberry types, inputs and enums, one module per domain; `schema.root` assembles the Schema."""
