"""Bundled data files (the default portrait); read with importlib.resources, never by source-relative paths."""
