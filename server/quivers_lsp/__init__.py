"""The QVR language server (pygls). Start it with ``python -m quivers_lsp``."""
