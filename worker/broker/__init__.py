"""The broker session: the only part of the worker that talks to IB.

``ib.py`` is the one module that imports the IB client library.
"""
