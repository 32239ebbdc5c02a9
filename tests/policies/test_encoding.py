"""Pairs as a policy reads them: layout and truncation."""

from w2s_helpers.policies import encoding

from .stand_ins import PAIRS, tiny_lm


def test_encode_pairs_layout_and_truncation(tiny_hub_folders):
    tok = tiny_lm(tiny_hub_folders).tokenizer
    enc = encoding.encode_pairs(tok, PAIRS)
    n = len(PAIRS)
    assert len(enc) == n and len(enc.ids) == 2 * n
    for r in range(2 * n):
        assert enc.ids[r][-1] == tok.eos_token_id                     # trl appends EOS
        assert enc.ids[r][: enc.starts[r]] == enc.ids[(r + n) % (2 * n)][: enc.starts[(r + n) % (2 * n)]]
    cut = encoding.encode_pairs(tok, PAIRS, max_prompt=3, max_response=2)
    for full, short, s0, s1 in zip(enc.ids, cut.ids, enc.starts.tolist(), cut.starts.tolist()):
        assert s1 == min(3, s0)
        assert short[:s1] == full[s0 - s1: s0]                        # the last prompt tokens
        assert short[s1:] == full[s0: s0 + 2]                         # the first response tokens
    assert encoding.pair_lengths(cut).max() == 2
    taken = enc.take([2, 0])
    assert taken.ids == [enc.ids[2], enc.ids[0], enc.ids[n + 2], enc.ids[n]]
