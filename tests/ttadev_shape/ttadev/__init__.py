"""Test-only stand-in for the TTA.dev package (public shape only)."""
