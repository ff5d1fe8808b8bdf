"""keyscan: find API keys of social-media automation services."""

__version__ = "0.1.0"
