"""Length batches: every item once, bounded padding."""

from w2s_helpers.core import batching


def test_length_batches_cover_everything_and_bound_padding():
    import random

    rng = random.Random(0)
    lengths = [rng.choice([3, 40, 41, 90, 256, 256, 12]) + rng.randrange(5) for _ in range(300)]
    batches = batching.length_batches(lengths, max_rows=16, max_tokens=1024)
    assert sorted(i for b in batches for i in b) == list(range(300))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) <= 16 and (len(b) == 1 or len(b) * longest <= 1024)
        assert all(lengths[i] >= 0.8 * longest for i in b)  # no row more than 20% padding
    assert batching.length_batches([5000, 2], max_rows=16, max_tokens=1024) == [[0], [1]]
