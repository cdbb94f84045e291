"""Figures and tables from run folders (plots.py, tables.py) and the rebuild of every figure
the docs show from results/reference/ (figures.py)."""
