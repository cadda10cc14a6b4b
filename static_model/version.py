"""The toolkit's version, from the installed package metadata."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("static-embeddings")
except PackageNotFoundError:  # running from a source tree that was not pip-installed
    __version__ = "0.1.0"
