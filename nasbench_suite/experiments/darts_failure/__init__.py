"""experiments darts_failure."""
