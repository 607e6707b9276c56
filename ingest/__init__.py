"""Selection of galaxies, particle cutouts and dark-matter targets (issue 3)."""
