"""gqcodec: a lossy neural image codec built on Gaussian Quant.

``compress(image, quality=None, mode="range") -> bytes``, ``decompress(data) -> PIL.Image``,
``info(data) -> bitstream.Header``, ``reduce(data, quality, fast=False) -> bytes`` (a smaller file of
the same image, without the original) and ``load(name=None, quality=None, device="cpu") -> Codec``.
Importing the package is cheap: torch is imported on first use of the codec; ``info``,
``reduce(..., fast=True)`` and ``ModelCard`` (a model's ladder, prior and identity) never import it.
"""
__version__ = "0.1.0"

_LAZY = {"compress", "decompress", "load", "Codec"}  # these import torch
_CARD = {"reduce", "CodecError", "ModelCard"}  # these do not (gqcodec.card)


def info(data: bytes):
    """The parsed header (``bitstream.Header``) of .gqc bytes; needs no model and no torch."""
    import bitstream

    return bitstream.read_header(data)


def __getattr__(name):
    if name in _LAZY:
        from . import codec

        return getattr(codec, name)
    if name in _CARD:
        from . import card

        return getattr(card, name)
    raise AttributeError(f"module 'gqcodec' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY) + list(_CARD))
