"""Shared, torch-free vocabulary of the language: families, roles, options, algebras."""
