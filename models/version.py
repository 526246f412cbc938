"""The project's version, in one place: the package metadata (pyproject.toml reads it), `avatar --version`,
`/health` and the images' `org.opencontainers.image.version` label all report it. CHANGELOG.md says what each
version holds."""

VERSION = "0.2.0"
