"""The profiles: ``paper`` in full, ``cpu`` / ``smoke`` as overrides, and the dry run of a profile
(`cbmir_tf.profiles.dry_run_settings`): short trainings on a few images, same networks."""

import pytest

from cbmir_tf.profiles import (CPU, DRY_RUN_CAPS, DRY_RUN_DATA, DRY_RUN_PREFIX, DRY_RUN_VALUES, PROFILES, SMOKE,
                               dry_run_per_class, dry_run_settings, get_profile, merged, method_settings,
                               profile_overrides)

PAPER = {**PROFILES["paper"]["chapters"], **{f"method:{k}": v for k, v in PROFILES["paper"]["methods"].items()}}


def _settings(profile, section, **kwargs):
    if section.startswith("method:"):
        return method_settings(profile, section.removeprefix("method:"), **kwargs)
    return get_profile(profile, section, **kwargs)
#: Settings a dry run keeps: those that define a network, a descriptor or a search, and the optimiser.
KEPT = {
    "input_size", "input_sizes", "image_size", "config", "stem_filters", "stages", "fc1_units", "hash_bits",
    "init_stddev", "feature_dim", "pyramid_channels", "unet_size", "unet_filters",
    "unet_depth", "sift_vocab_sizes", "rootsift_vocab_sizes", "bovw_words", "sift_image_size",
    "cnn_input_size", "cnn_models", "max_descriptors_per_image", "sweep_bins", "fallback_sets",
    "fallback_size", "k", "k_prep", "n_candidates", "hamming_threshold", "threshold_step",
    "batch_size", "learning_rate", "momentum", "val_fraction", "test_fraction",
    # the methods' settings
    "code_bits", "dropout", "barcode_size", "n_angles", "weight_decay", "augmentation", "optimizer", "min_pool",
    "n_words", "root", "points_per_word", "model", "pooling", "cell_size", "block_size", "block_stride",
    "n_bins", "time_budget_s", "baselines", "network", "levels", "max_per_class_ablations",
    "target_recall",  # the scale chapter's calibration target
    "pq_ms", "throughput_methods",  # its compressed indexes' code sizes, the methods whose rate it measures
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
    paper, capped = _flat(PAPER[section]), _flat(_settings("paper", section, dry_run=True))
    assert capped.keys() == paper.keys()
    for name, value in capped.items():
        key = name.rsplit(".", 1)[-1]
        if key in KEPT or key.endswith("time_budget_s"):
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
    assert get_profile("paper", "benchmark", dry_run=True)["max_per_class"] == 3
    fpn = method_settings("paper", "resnet50v2_fpn", dry_run=True)
    assert fpn["training"]["epochs"] == 1 and fpn["balance_per_class"] == 1  # nested training settings too
    assert fpn["pyramid_channels"] == 256 and fpn["input_size"] == 128
    vgg = method_settings("paper", "vgg_configs", dry_run=True)
    assert vgg["training"]["epochs"] == 1 and vgg["training"]["batch_size"] == 256
    cnnc = method_settings("paper", "cnnc_rbc", dry_run=True)
    assert cnnc["training"]["steps_per_epoch"] == 2 and cnnc["training"]["patience"] is None  # None: no early stop
    inres = method_settings("paper", "inres_hashing", dry_run=True)
    assert inres["training"]["epochs"] == 1 and inres["input_size"] == 256 and inres["hash_bits"] == 48
    assert method_settings("paper", "bovw", dry_run=True)["max_iter"] == 3
    hashing = get_profile("paper", "inres_hashing", dry_run=True)
    assert hashing["unet_training"]["epochs"] == 1 and hashing["unet_size"] == 256
    assert get_profile("paper", "scale", dry_run=True)["sizes"] == (1_000, 2_000)
    assert get_profile("paper", "vgg_configs", dry_run=True)["ablation_configs"] == ("A",)
    assert dry_run_per_class({"val_fraction": 0.2}) == 3 and dry_run_per_class({"test_fraction": 0.3}) == 3
    assert dry_run_per_class({"val_fraction": 0.1}) == 6  # round(0.6) = 1 image of 6 held out


def test_dry_run_leaves_its_input_and_the_profiles_alone():
    before = _flat(PAPER["method:resnet50v2_fpn"])
    dry_run_settings(PAPER["method:resnet50v2_fpn"])
    method_settings("paper", "resnet50v2_fpn", dry_run=True)
    assert _flat(PAPER["method:resnet50v2_fpn"]) == before
    assert get_profile("paper", "hog")["max_per_class"] is None


def test_dry_run_never_raises_a_smaller_setting_and_overrides_come_last():
    assert dry_run_settings({"epochs": 1, "max_per_class": 2, "steps_per_epoch": None, "patience": None,
                    "other": {"unet_epochs": 0, "batch_size": 512}}) == {
        "epochs": 1, "max_per_class": 2, "steps_per_epoch": 2, "patience": None,
        "other": {"unet_epochs": 0, "batch_size": 512}}
    assert get_profile("smoke", "benchmark", dry_run=True)["fallback_max_per_class"] == 3  # None: no cap
    assert get_profile("paper", "hog", dry_run=True, max_per_class=7)["max_per_class"] == 7
    with pytest.raises(ValueError, match="Unknown settings"):
        get_profile("paper", "hog", dry_run=True, no_such_setting=1)
    tuned = method_settings("cpu", "cnnc_rbc", training={"epochs": 3})
    assert tuned["training"]["epochs"] == 3 and tuned["training"]["optimizer"] == "adam"  # merged, not replaced


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_section_of_every_profile_has_a_dry_run(profile):
    for part in ("chapters", "methods"):
        for section, settings in PROFILES[profile][part].items():
            name = section if part == "chapters" else f"method:{section}"
            assert _flat(_settings(profile, name, dry_run=True)).keys() == _flat(settings).keys()


def test_cpu_and_smoke_only_override_the_paper_profile():
    for overrides in (CPU, SMOKE):
        assert merged(PROFILES["paper"], overrides) == PROFILES["cpu" if overrides is CPU else "smoke"]
    with pytest.raises(KeyError, match="not a setting of the paper profile"):
        merged(PROFILES["paper"], {"methods": {"hog": {"n_bin": 9}}})
    rows = {name: (paper, cpu) for name, paper, cpu in profile_overrides("cpu")}
    assert rows["methods.bovw.n_words"] == (4000, 1000)
    assert "methods.hog.n_bins" not in rows  # HOG runs with the paper's settings under cpu
    assert profile_overrides("paper") == []
    with pytest.raises(ValueError, match="Unknown profile"):
        method_settings("gpu", "hog")
