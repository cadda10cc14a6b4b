"""CPU-only runtime for static embedding models: numpy, tokenizers, safetensors and numba, nothing heavier."""

from static_model.interrupts import exit_on_interrupt_while_starting

exit_on_interrupt_while_starting()  # first: a Ctrl-C in the seconds of imports below is one line and status 130

from static_model.model import StaticModel
from static_model.version import __version__

__all__ = ["StaticModel", "__version__"]
