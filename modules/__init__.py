"""Reusable constructs, one job per module. Each takes a small typed props object (plus the constructs it depends
on) and exposes what it created as attributes. Providers, backends and outputs belong to stacks, not here."""
