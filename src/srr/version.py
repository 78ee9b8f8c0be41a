"""The version of srr (one place; ``srr.__version__`` re-exports it)."""
__version__ = "0.2.0"
