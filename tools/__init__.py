"""Utilities run by hand from a checkout (download SVHN, ...)."""
