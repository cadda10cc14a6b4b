"""CPU-only runtime for static embedding models: numpy, tokenizers, safetensors and numba, nothing heavier."""

from static_model.model import StaticModel
from static_model.version import __version__

__all__ = ["StaticModel", "__version__"]
