"""sflowpipe: sFlow v5 analytics as a horizontally scalable stream pipeline."""

__version__ = "0.1.0"
