"""Callbacks for `trainer::callbacks`."""
