"""The measurement layer, shared by both scenarios: knowledge regions, Deception Scores and the
conflict tax, and the intervals around them. It takes per-pair correctness vectors and
margins, whichever scenario produced them.

    regions  the four cells (Wk∩Sk, Wk∩Suk, Wuk∩Sk, Wuk∩Suk) and accuracy inside them
    scores   every Deception Score, the conflict tax per cell, one-call bootstrap summaries
    stats    Wilson, bootstrap and seed intervals; the crossed bootstrap over seeds and test pairs,
             one-sided bootstrap p-values, Holm's correction, clustered slope differences
    verdict  the verdict on deception (two checks, Holm; the placebo and margin-matched comparisons
             as diagnostics), placebos matched in push, and how often it says yes on simulated
             experiments (its power on a planted world, its false-positive rate on an unrelated one)
"""
