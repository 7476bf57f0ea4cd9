"""Backprop Lens engine: a plain NumPy library that trains networks and exposes every number of backpropagation."""
