"""OVAL: a learned video codec you can train on your own footage.

Importing the package is cheap: torch, PyAV and constriction load only when a module that needs
them is imported.
"""

__version__ = "0.1.0"
