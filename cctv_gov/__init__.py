"""cctv-gov: CCTV footage governance."""

__version__ = "0.1.0"
