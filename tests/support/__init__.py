"""Helpers shared by several test modules and the rehearsal: one place each."""
