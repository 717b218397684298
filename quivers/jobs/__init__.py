"""Sampling and fitting runs shared by the command line and the language server."""
