"""antiapi: a local LLM API gateway. Importing the package loads nothing heavy."""

__version__ = "0.1.0"
