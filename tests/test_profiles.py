"""The dry run of a profile (`cbmir_tf.profiles.dry_run_settings`): short trainings on a few images, same networks."""

import pytest

from cbmir_tf.profiles import (DRY_RUN_CAPS, DRY_RUN_DATA, DRY_RUN_PREFIX, DRY_RUN_VALUES, PROFILES, dry_run_settings,
                               dry_run_per_class, get_profile)

PAPER = PROFILES["paper"]
#: Settings a dry run keeps: those that define a network, a descriptor or a search, and the optimiser.
KEPT = {
    "input_size", "input_sizes", "image_size", "config", "stem_filters", "stages", "fc1_units", "hash_bits",
    "init_stddev", "feature_dim", "pyramid_channels", "unet_size", "unet_filters",
    "unet_depth", "sift_vocab_sizes", "rootsift_vocab_sizes", "bovw_words", "sift_image_size",
    "cnn_input_size", "cnn_models", "max_descriptors_per_image", "sweep_bins", "fallback_sets",
    "fallback_size", "k", "k_prep", "n_candidates", "hamming_threshold", "threshold_step",
    "batch_size", "learning_rate", "momentum", "val_fraction", "test_fraction",
}


def _flat(settings, prefix=""):
    """``{"fpn.epochs": 500, ...}``: the nested sections' settings under dotted names."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("section", sorted(PAPER))
def test_dry_run_caps_training_and_data_and_keeps_the_papers_architecture(section):
    paper, capped = _flat(PAPER[section]), _flat(get_profile("paper", section, dry_run=True))
    assert capped.keys() == paper.keys()
    for name, value in capped.items():
        key = name.rsplit(".", 1)[-1]
        if key in KEPT:
            assert value == paper[name], name
        elif key.endswith("epochs"):
            assert value == 1, name
        elif key == "steps_per_epoch":
            assert value == 2, name
        elif key == "patience":
            assert value in (None, 1), name
        elif key in DRY_RUN_DATA:
            assert value is not None and 3 <= value <= 10, name
        elif key in DRY_RUN_CAPS:
            assert value is not None and value <= DRY_RUN_CAPS[key], name
        elif key in DRY_RUN_PREFIX:
            assert 1 <= len(value) <= DRY_RUN_PREFIX[key] and value == paper[name][:len(value)], name
        elif key in DRY_RUN_VALUES:
            assert value == DRY_RUN_VALUES[key], name
        else:
            pytest.fail(f"{section}: {name} is neither capped by a dry run nor listed in KEPT")


def test_dry_run_caps_what_makes_the_paper_profile_long():
    side = get_profile("paper", "side_by_side", dry_run=True)
    assert side["max_per_class"] == 3 and side["n_timing_queries"] == 2
    assert side["fpn"]["epochs"] == 1 and side["fpn"]["balance_per_class"] == 1
    assert side["fpn"]["pyramid_channels"] == 256 and side["fpn"]["input_size"] == 128  # nested sections too
    assert side["vgg"]["epochs"] == 1 and side["vgg"]["batch_size"] == 256
    assert side["cnnc"]["steps_per_epoch"] == 2 and side["cnnc"]["patience"] is None  # None: no early stop
    assert side["inres"]["epochs"] == 1 and side["inres"]["input_size"] == 256
    hashing = get_profile("paper", "inres_hashing", dry_run=True)
    assert hashing["unet_epochs"] == 1 and hashing["unet_size"] == 256 and hashing["hash_bits"] == 48
    assert get_profile("paper", "scale", dry_run=True)["sizes"] == (1_000, 2_000)
    # a 10 % validation share needs 6 images of a class to keep one of them (round(0.6) = 1)
    assert get_profile("paper", "vgg_configs", dry_run=True)["max_per_class"] == 6
    assert get_profile("paper", "vgg_configs", dry_run=True)["ablation_configs"] == ("A",)
    assert dry_run_per_class({"val_fraction": 0.2}) == 3 and dry_run_per_class({"test_fraction": 0.3}) == 3


def test_dry_run_leaves_its_input_and_the_profiles_alone():
    before = _flat(PAPER["side_by_side"])
    dry_run_settings(PAPER["side_by_side"])
    get_profile("paper", "side_by_side", dry_run=True)
    assert _flat(PAPER["side_by_side"]) == before
    assert get_profile("paper", "hog")["max_per_class"] is None


def test_dry_run_never_raises_a_smaller_setting_and_overrides_come_last():
    assert dry_run_settings({"epochs": 1, "max_per_class": 2, "steps_per_epoch": None, "patience": None,
                    "other": {"unet_epochs": 0, "batch_size": 512}}) == {
        "epochs": 1, "max_per_class": 2, "steps_per_epoch": 2, "patience": None,
        "other": {"unet_epochs": 0, "batch_size": 512}}
    smoke = get_profile("smoke", "resnet50v2_fpn", dry_run=True)
    assert smoke["max_per_class"] == 3 and smoke["epochs"] == 1 and smoke["patience"] == 1
    assert get_profile("smoke", "benchmark", dry_run=True)["fallback_max_per_class"] == 3  # None: no cap
    assert get_profile("smoke", "side_by_side", dry_run=True)["fpn"]["patience"] is None
    assert get_profile("paper", "hog", dry_run=True, max_per_class=7)["max_per_class"] == 7
    with pytest.raises(ValueError, match="Unknown settings"):
        get_profile("paper", "hog", dry_run=True, no_such_setting=1)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_section_of_every_profile_has_a_dry_run(profile):
    for section in PROFILES[profile]:
        settings = get_profile(profile, section, dry_run=True)
        assert _flat(settings).keys() == _flat(PROFILES[profile][section]).keys()
