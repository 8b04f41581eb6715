"""Generators for the shipped rules and dashboards.

One source of truth, checked against the metric contract.
"""
