"""Scoring: the paper's metrics (metrics.py), its table shapes (tables.py) and plots (plots.py)."""
