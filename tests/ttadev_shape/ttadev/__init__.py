"""Test-only stand-in for the TTA.dev package, written from its public repository's behaviour."""
