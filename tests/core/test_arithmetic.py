"""The arithmetic task: deterministic, verified answers, disjoint questions, shares as configured."""

import json
import os

import pytest

from w2s_helpers.core import arithmetic as A
from w2s_helpers.core import data, profiles, tasks

SPEC = A.ArithmeticSpec(n_gt=300, n_w2s=300, n_test=400, n_conflict=200, belief_share=0.6, wrong_share=0.25,
                        conflict_wrong_share=0.7, seed=3)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return A.write(SPEC, tmp_path_factory.mktemp("task") / "arith")


def load(root, split):
    path, turns = data.split_path(split, root)
    return data.load_pairs(path, turns)


def test_generation_is_deterministic_and_seeded():
    one, two = A.generate(SPEC), A.generate(SPEC)
    assert one == two
    other = A.generate(A.ArithmeticSpec(**{**SPEC.__dict__, "seed": 4}))
    assert other["test"] != one["test"]


def test_files_read_back_in_the_hh_layout(written):
    for split, n in (("harmless_gt", 300), ("harmless_w2s", 300), ("harmless_test", 400), ("helpful", 200)):
        assert len(load(written, split)) == n
    manifest = json.loads((written / "TASK.json").read_text())
    assert manifest["spec"]["seed"] == 3 and manifest["generator_version"] == A.GENERATOR_VERSION


def test_every_chosen_answer_is_verified_and_no_near_miss_is_true(written):
    for split in ("harmless_gt", "harmless_w2s", "harmless_test"):
        for p in load(written, split):
            q = A.parse(p)
            assert int(p.chosen) == q.a * q.b
            assert int(p.rejected) != q.a * q.b and int(p.rejected) > 0
            if q.belief == "wrong":
                assert q.stated == int(p.rejected)
    for p in load(written, "helpful"):          # sycophancy pairs: chosen = what the user believes
        q = A.parse(p)
        assert q.stated == int(p.chosen) and q.belief in ("right", "wrong")
        assert {int(p.chosen), int(p.rejected)} >= {q.a * q.b}


def test_difficulty_levels_as_specified():
    for split, items in A.generate(SPEC).items():
        for it in items:
            da, db = A.LEVELS[it.level]
            assert sorted((len(str(it.a)), len(str(it.b))), reverse=True) == [da, db]
    counts = A.allocate(1200, SPEC.levels)
    assert counts["1x1"] == len(A.questions("1x1")) == 45          # capped, the rest shared equally
    assert sum(counts.values()) == 1200 and max(counts.values()) - min(v for k, v in counts.items() if k != "1x1") <= 1
    with pytest.raises(ValueError, match="distinct questions"):
        A.allocate(10**6, ("1x1", "2x1"))


def test_no_question_is_shared_across_files():
    seen = {}
    for split, items in A.generate(SPEC).items():
        for it in items:
            key = tuple(sorted((it.a, it.b)))
            assert seen.setdefault(key, split) == split, f"{key} in {seen[key]} and {split}"


def test_belief_shares_as_configured():
    g = A.generate(A.ArithmeticSpec(n_gt=2000, n_w2s=10, n_test=10, n_conflict=2000, belief_share=0.6,
                                    wrong_share=0.25, conflict_wrong_share=0.7))
    beliefs = [it.belief for it in g["gt"]]
    with_belief = [b for b in beliefs if b != "none"]
    assert abs(len(with_belief) / len(beliefs) - 0.6) < 0.04
    assert abs(with_belief.count("wrong") / len(with_belief) - 0.25) < 0.04
    conflict = [it.belief for it in g["conflict"]]
    assert "none" not in conflict and abs(conflict.count("wrong") / len(conflict) - 0.7) < 0.04
    none = A.generate(A.ArithmeticSpec(belief_share=0.0))
    assert {it.belief for it in none["test"]} == {"none"}


def test_near_misses_cover_every_kind_and_stay_close():
    import random

    rng = random.Random(0)
    kinds = set()
    for a, b in ((1, 1), (3, 7), (7, 8), (37, 27), (268, 78), (10, 40)):
        truth = a * b
        for _ in range(200):
            miss, kind = A.near_miss(a, b, rng)
            kinds.add(kind)
            assert miss > 0 and miss != truth
            near = {a * (b + k) for k in (-2, -1, 1, 2)} | {(a + k) * b for k in (-2, -1, 1, 2)}
            misread = {(a - a % 10 + d) * b for d in range(10)} | {a * (b - b % 10 + d) for d in range(10)}
            assert miss in (misread if kind == "operand misread" else near)
            if kind == "neighbouring product":
                assert miss in {a * (b - 1), a * (b + 1), (a - 1) * b, (a + 1) * b}
    assert kinds == set(A.MISS_KINDS)


def test_the_numbers_alone_do_not_give_the_answer_away():
    """A linear probe on the two responses' surface features (length, last digit, trailing zeros,
    leading digit, divisibility by 3 and 9), fitted on 3000 pairs, is at chance on 3000 others: its
    Wilson 95% interval reaches down to 50%. Random offsets or a changed digit of the answer as near
    misses fail this (52-58% with the generator's earlier versions)."""
    import torch

    from w2s_helpers.deception.stats import wilson_ci
    from w2s_helpers.rewards.heads import fit_pairwise_head, slot_order

    def feats(n: int) -> list[float]:
        s = str(n)
        return [len(s), *(float(s[-1] == str(d)) for d in range(10)), len(s) - len(s.rstrip("0")),
                *(float(s[0] == str(d)) for d in range(1, 10)), float(n % 3 == 0), float(n % 9 == 0)]

    items = A.generate(A.ArithmeticSpec(n_gt=3000, n_w2s=10, n_test=3000, n_conflict=10, belief_share=0.0))

    def xy(split, seed):
        a, b, y = slot_order(torch.tensor([feats(it.truth) for it in items[split]]),
                             torch.tensor([feats(it.miss) for it in items[split]]), seed)
        return a - b, y

    x, y = xy("gt", 0)
    w = fit_pairwise_head(x, y, l2=1e-2)
    xt, yt = xy("test", 1)
    right = int((((xt @ w) > 0).float() == yt).sum())
    assert wilson_ci(right, len(yt))[0] <= 0.5, f"surface probe {right / len(yt):.3f} on the numbers alone"


def test_bad_specs_and_prompts_fail_clearly():
    with pytest.raises(ValueError, match="unknown levels"):
        A.ArithmeticSpec(levels=("4x4",))
    with pytest.raises(ValueError, match="belief_share"):
        A.ArithmeticSpec(belief_share=1.5)
    with pytest.raises(ValueError, match="n_test"):
        A.ArithmeticSpec(n_test=0)
    with pytest.raises(ValueError, match="not an arithmetic prompt"):
        A.parse(data.PreferencePair("How do I pick a lock?", "I can't help", "Sure", source="x.jsonl:3"))


def test_use_switches_the_data_and_back(monkeypatch, tmp_path):
    monkeypatch.setenv("W2S_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(data.TASK_DATA_ENV, raising=False)
    p = profiles.get("ci")
    root = tasks.use("arithmetic", p)
    assert data.resolve_data_dir() == root.resolve() and (root / "TASK.json").exists()
    assert len(data.load_split("harmless_test")) == p.n_test
    assert tasks.use("arithmetic", p) == root                    # generated once, then reused
    tasks.use("hh", p)
    assert data.TASK_DATA_ENV not in os.environ
    with pytest.raises(ValueError, match="unknown TASK 'chess'"):
        tasks.use("chess", p)
