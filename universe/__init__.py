"""The embedded mock universe: a small simulation written in IllustrisTNG's exact on-disk layout."""
