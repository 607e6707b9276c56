"""Models, training loops and the Ray Train wrapper (issue 5)."""
