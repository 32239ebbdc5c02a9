"""The figures' colours: one per role, in every chapter."""

from __future__ import annotations

from w2s_helpers.course import plotting


def test_each_role_keeps_its_colour_whatever_else_is_drawn():
    a = plotting.palette(["weak", "student", "strong"])
    b = plotting.palette(["strong ceiling", "floor (twin)", "student of minilm-l6", "weak ceiling", "other"])
    assert a["weak"] == b["weak ceiling"] == plotting.ROLES["weak"]
    assert a["strong"] == b["strong ceiling"] == plotting.ROLES["strong"]
    assert a["student"] == b["student of minilm-l6"] == plotting.ROLES["student"]
    assert b["floor (twin)"] == plotting.ROLES["floor"]
    assert b["other"] not in plotting.ROLES.values()


def test_several_series_of_one_role_get_distinct_shades():
    labels = ["no_conflict", "implicit 10%", "implicit 25%", "implicit 47%", "explicit α=0.5", "x", "y"]
    colours = plotting.palette(labels)
    assert list(colours) == labels
    assert len(set(colours.values())) == len(labels)
    assert colours["implicit 25%"].lower() == plotting.ROLES["implicit"].lower()   # the middle one: the base
    assert plotting.role_of("its placebo (matched in push)") == "placebo"
    assert plotting.role_of("weak → strong") == "weak" and plotting.role_of("strong ceiling of the weak") == "strong"
    two = plotting.palette(["no_conflict", "student of x"])       # synonyms share one role: two shades
    assert len(set(two.values())) == 2


def test_a_label_of_no_role_keeps_its_colour_across_figures():
    rungs = ["minilm-l6", "smollm2-135m", "qwen2.5-0.5b", "qwen2.5-1.5b"]
    one, other = plotting.palette(rungs), plotting.palette(rungs[1:])   # a panel without minilm-l6
    assert all(other[r] == one[r] for r in rungs[1:]) or len(set(one.values())) < len(rungs)
    assert len(set(one.values())) == len(rungs)
