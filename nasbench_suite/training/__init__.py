"""Training: the one search loop every method runs in (loop.py), what resume may change
(resume.py), training from scratch (scratch.py), and the measurements they share (accuracy,
inherited weights, how far the architecture weights moved)."""
