"""Settings files (default.yaml and profiles); read with importlib.resources through models.settings."""
