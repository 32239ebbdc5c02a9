"""The reproduction report (chapter 6): each claim of the paper against the saved summaries of
chapters 3-5, with intervals, power and deviations. Reads everything below it.

    claims      the paper's four claims, the verdict in words that follows from an estimate, its
                interval, its power and whether it could be tested; the claims table from saved rows
    deviations  where the run in front of you differs from the paper's set-up, generated from the
                profile and the data actually used
    export      the claims table as CSV and Markdown beside the executed notebook
    robustness  the reward-model verdict on deception recomputed on two halves of the test pool
"""
