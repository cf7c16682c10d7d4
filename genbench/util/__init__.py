"""Helpers every layer uses and that need nothing of genbench but its errors: atomic writes, progress lines."""
