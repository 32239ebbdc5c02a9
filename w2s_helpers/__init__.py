"""Plumbing for the w2s-deception-course notebooks.

Importing this package has no side effects: nothing is loaded, downloaded or written
until a function is called. Chapters import the modules they need::

    from w2s_helpers import data, models, features, profiles
"""

__version__ = "0.1.0"
