"""The course layer: what a learner or CI touches. Nothing below imports it.

    runner    executes chapters with papermill (a line per cell, progress, peak memory)
    checks    one named check per exercise (a learner's function against the reference)
    exercises the learner copies: every solution stubbed, written to ``notebooks/exercises/``
    env       the environment check (versions, threads, device, precision, folders)
    plotting  the course's figures
    cli       ``python -m w2s_helpers {check,kernel,fetch,build-data,run,exercises}``
"""
