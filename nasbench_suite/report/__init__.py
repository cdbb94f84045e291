"""Figures and tables from run folders (plots.py, tables.py); the rebuild of every figure the
docs show, experiments' reports included, is experiments/figures.py (it stands above both)."""
