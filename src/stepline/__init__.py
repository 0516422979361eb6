"""stepline: a workflow engine in which every step of every run is on the record."""

__version__ = "0.1.0"
