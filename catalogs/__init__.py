"""Parquet catalogs of the store and read-only SQL over them."""
