"""Scenario 1, reward models (chapters 0-3): the pairwise loss and its explicit-conflict term,
linear heads on frozen features, the top-blocks and fine-tuning regimes, one lab over all
three, and a toy world where the answer is known.

    losses      pairwise reward loss (Bradley-Terry) and the explicit-conflict loss
    heads       linear reward heads on features, weak soft labels, PGR
    top_blocks  the top k blocks and a reward head on cached activations
    finetune    whole reward models through trl's RewardTrainer
    lab         one interface (ceiling, fit, margins) over the probe, top_blocks and finetune regimes
    toy         a synthetic world with a planted capability gap
"""
