"""Hybrid Dialogue: a GAN + VAE customer-support response generator and its MLOps pipeline."""

__version__ = "0.1.0"
