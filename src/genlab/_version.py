"""The package version, in a module of its own so the lowest layers can read it without
importing the package (whose ``__init__`` imports the contract)."""
__version__ = "0.1.0"
