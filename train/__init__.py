"""Data and training recipes for the recognizer (run from a checkout; not installed)."""
