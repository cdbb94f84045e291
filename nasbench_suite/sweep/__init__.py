"""Many runs: a sweep as data (spec.py), its trials on Ray Tune (tune.py, trials.py) and the
one place that starts or joins Ray (ray_session.py)."""
