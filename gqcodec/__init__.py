"""gqcodec: a lossy neural image codec built on Gaussian Quant."""
__version__ = "0.1.0"
