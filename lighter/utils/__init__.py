"""Helpers usable as `_target_` in YAML."""
