"""Generators for the shipped rules and dashboards: one source of truth, checked against the contract."""
