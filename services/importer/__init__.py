"""Importers that carry a legacy portal's figures over into the counter's Redis records."""
