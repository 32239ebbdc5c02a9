"""Plumbing for the w2s-deception-course notebooks, in layers (see ARCHITECTURE.md)::

    course/                      runner, exercise checks, environment check, plotting, CLI
    report/                      chapter 6 (to come)
    mitigations/                 chapter 5 (to come)
    rewards/  policies/  deception/   two scenarios and the measurement layer they share
    core/                        data, hub, models, precision, caches, features, profiles, runs

A module imports only from its own folder and the folders below it; ``rewards``,
``policies`` and ``deception`` do not import one another. Importing this package has no side
effects: nothing is loaded, downloaded or written until a function is called. Chapters
import the modules they teach by name::

    from w2s_helpers.core import data, models, profiles
    from w2s_helpers.deception import regions, scores
"""

__version__ = "0.1.0"
