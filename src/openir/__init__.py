"""OpenIR: an open platform for image-guided interventional therapy."""

__version__ = "0.1.0"
