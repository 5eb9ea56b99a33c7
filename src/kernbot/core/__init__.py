"""The pure core: kernel text in, events out.

Standard library and pydantic only; no I/O, no clock.
"""
