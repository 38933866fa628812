"""Reference scale-equivariant models (built in later issues)."""
