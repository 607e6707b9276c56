"""Galaxy clusters: intracluster-medium profiles and the ``clusters`` universe preset."""
