"""Shared helpers for every role: vector validation, metric names."""
