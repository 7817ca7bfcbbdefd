"""Terraform stacks: each owns its provider, backend and outputs, and composes constructs from `modules/`."""
