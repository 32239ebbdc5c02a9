"""The foundation: data, the hub, models, precision, caches, features, the decoder cut, profiles,
pools and saved runs. Nothing here knows about reward models, policies or deception.

    paths      where the repository's folders are
    store      the cache folder, content hashes, atomic writes
    progress   progress bars (widgets in JupyterLab, text lines headless)
    work       the matmul-FLOP ledger that bench/bench_course.py reads
    batching   length batches, epoch batches, padding
    data       preference pairs: loading, validation, the paper's splits, subsets
    hub        the Hugging Face hub: reachability, the splits built from HH-RLHF
    precision  fp32 or bf16, measured per machine
    models     the model ladder (rungs): install, verify, load
    features   frozen-backbone features, batched by length and cached
    decoder    a decoder cut in two: cached activations below the top k blocks, and those blocks
    profiles   ci / laptop / paper: sizes, rungs, regimes
    pools      the profile's fixed subsets of the splits, shared by every chapter
    results    saved runs: per-pair correctness and margins, keyed by their configuration
"""
