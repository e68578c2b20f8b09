"""digest: a self-hosted newsletter generator for technical blogs."""

__version__ = "0.1.0"
