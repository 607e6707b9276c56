"""Evaluation of cluster_mass runs (issue 20): scores, the observer's NFW baseline, the report."""
