import dataclasses

import pytest

import nucleikit as nk
from nucleikit import profiles


def test_every_chapter_has_quick_and_full_settings():
    for key, chapter in profiles.CHAPTERS.items():
        assert key == chapter.key
        for name in profiles.PROFILES:
            cfg = profiles.get(key, name)
            assert isinstance(cfg, chapter.settings)
            assert dataclasses.is_dataclass(cfg)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (3, "03_segmentation"),
        ("03", "03_segmentation"),
        ("segmentation", "03_segmentation"),
        ("07_kinet", "07_kinet"),
        ("stain-normalization", "01_stain_normalization"),
    ],
)
def test_find_chapter_by_number_or_name(text, key):
    assert profiles.find_chapter(text).key == key


def test_unknown_chapter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown chapter 'nonsense'.*00 \(data\)"):
        profiles.find_chapter("nonsense")


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown profile 'nonsense'; valid profiles: quick, full"):
        profiles.get("07", "nonsense")


def test_unknown_knob_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown parameter\(s\) 'no_such_knob'.*valid parameters: profile, .*seed"
    ):
        profiles.get("07", "quick", no_such_knob=1)


def test_override_one_setting_and_keep_the_rest():
    base = profiles.get("03", "quick")
    cfg = profiles.get("03", "quick", seed=7)
    assert cfg.seed == 7
    assert dataclasses.replace(cfg, seed=base.seed) == base


def test_none_keeps_the_profile_value():
    assert profiles.get("03", "full", seed=None) == profiles.get("03", "full")


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"knob 'seed': expected int, got str"):
        profiles.get("03", "quick", seed="zero")
    with pytest.raises(TypeError, match=r"knob 'seed'"):
        profiles.get("03", "quick", seed=True)


def test_resolve_reads_a_notebook_namespace():
    import numpy as np

    namespace = {"profile": "quick", "seed": 3, "np": np, "nk": nk, "_": 1, "In": [], "get_ipython": print}
    assert profiles.resolve("03", "quick", namespace).seed == 3
    namespace["stpes"] = 10  # a typo in a papermill -p
    with pytest.raises(ValueError, match="'stpes'"):
        profiles.resolve("03", "quick", namespace)


def test_settings_are_frozen():
    cfg = profiles.get("00")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1


def test_pick_reads_dataclasses_and_mappings_in_the_asked_order():
    cfg = profiles.get("03", "quick", steps=7)
    assert profiles.pick(cfg, ["steps", "no_such_field", "seed"]) == {"steps": 7, "seed": cfg.seed}
    assert list(profiles.pick({"b": 1, "a": 2}, ["a", "b"])) == ["a", "b"]
    with pytest.raises(TypeError, match="settings dataclass or a mapping, got list"):
        profiles.pick([("steps", 1)], ["steps"])
