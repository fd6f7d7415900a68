"""Checkpoint converters: released ImageNet weights -> mmattn backbones (``convert.py``)."""
