"""Curation: the preference pairs reward models train on."""
