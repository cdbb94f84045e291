"""experiments claims."""
