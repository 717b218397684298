"""One thin handler per LSP method, grouped by area; each module has ``register``."""
