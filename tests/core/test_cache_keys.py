"""Cache keys depend on content and version constants, not on where the code lives.

The values below were computed before the package moved into layers (ARCHITECTURE.md). If one
changes, every cache entry of that kind is recomputed on the users' machines: bump the version
constant on purpose, say so in the README, and update the value here.
"""

import dataclasses

from w2s_helpers.core import decoder, features, profiles, results, store
from w2s_helpers.policies import encoding, lab, training


def test_feature_key():
    spec = features.FeatureSpec(dtype="float32")
    assert features.cache_key("rung:abc:float32", ["a text", "another"], spec) == "e1c84878536c12452d501d1c"


def test_saved_run_key():
    cfg = results.RunConfig(role="student", model="smollm2-135m", weak="minilm-l6", setting="no_conflict", seed=3,
                            profile="ci", data_hash="d", precision="float32")
    # The layered move kept this key ("1cf7380a1b9988aab276"); results version 2 changed it on
    # purpose, when the fit settings and the version joined every saved run's key ("f852002a31eb2c2baf79"),
    # and version 3 when the placebo's share did.
    assert results.RESULTS_VERSION == "3"
    assert cfg.key() == "6e9617a1716e88a09d80"


def test_policy_run_key_parts():
    config = training.POConfig.for_loss("simpo", alpha=0.5)
    assert store.content_hash(dataclasses.asdict(config)) == "e054f855e374db6d"
    # "db62e7c7c8b84b45" while every field of the settings was hashed; now only those that decide a run
    ci = profiles.get("ci").po
    assert store.content_hash(lab.run_settings(ci)) == "22f2c9ea08c99975"
    # which runs a chapter makes (seeds, twins, generation) is not part of any run's key
    more = dataclasses.replace(ci, seeds=(7, 8, 9), n_twins=5, n_generate=9, max_new_tokens=3)
    assert lab.run_settings(more) == lab.run_settings(ci)
    assert lab.run_settings(dataclasses.replace(ci, lr=1.0)) != lab.run_settings(ci)


def test_version_constants():
    assert (features.FEATURES_VERSION, decoder.TOP_BLOCKS_VERSION, encoding.POLICY_VERSION, lab.PO_LAB_VERSION) \
        == (1, "1", "1", "1")
