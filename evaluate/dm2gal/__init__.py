"""The dm2gal task's evaluation (Kasmanoff et al. 2020): how close a painted stellar-mass field
is to the hydro run's, in P(k), r(k), B(k) and the voxel PDF (:mod:`.scores`), and
``darkstack evaluate --task dm2gal``, which scores the painted test cube and the HOD baseline
(:mod:`.report`)."""
