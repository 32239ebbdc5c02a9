"""Scenario 2, policies (chapter 4): SFT, then DPO or SimPO, on hard weak labels.

    losses      DPO and SimPO per pair, and their explicit-conflict forms
    encoding    pairs as prompt + response tokens (trl's DPOTrainer tokenisation), cached activations
    logps       summed response log-probs and the preference they imply
    policy      the two kinds of policy: top blocks with LoRA, a whole causal LM
    training    the SFT and DPO/SimPO loops, LoRA adapters
    trl_check   trl's own losses on one batch, to check ours
    generation  greedy answers from a trained policy
    lab         PolicyLab: pools, cached runs, trained and scored policies
"""
