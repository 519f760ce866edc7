"""Parameter profiles of the notebooks: ``smoke``, ``cpu`` and ``paper``.

* ``smoke``: a few minutes on 2 CPU cores, for CI (small per-class subsets, short sweeps).
* ``cpu``: the default of ``make book``; the whole open benchmark, CPU-sized sweeps and epochs.
* ``paper``: the papers' own sizes and settings, meant for a GPU (e.g. Colab).

A notebook reads its settings with ``settings = get_profile(profile, "hog")``;
nothing further down in a notebook hard-codes a size or an epoch count.

A *dry run* (``get_profile(profile, section, dry_run=True)``, ``make dry-run``) keeps a
profile's architecture (input sizes, filters, stages, hash bits, ...) and caps only how long
things run and how much data they see (:func:`dry_run_settings`): CI runs every chapter under the
``paper`` profile that way, so that the papers' networks are built and take a training step.
"""

from __future__ import annotations

import copy
import math

#: The MedMNIST 2D sets the open benchmark falls back to when its eight sets are absent
#: (see ``cbmir_tf.data.benchmark.load_benchmark``): four modalities, five body regions.
FALLBACK_SETS = ("pneumoniamnist", "breastmnist", "organamnist", "octmnist")

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {
        "benchmark": {"fallback_sets": ("pneumoniamnist", "breastmnist"), "fallback_size": 28, "fallback_max_per_class": None},
        "side_by_side": {"max_per_class": 10, "k": 10, "k_prep": 30, "n_timing_queries": 5, "bovw_words": 100,
                         "fpn": {"input_size": 64, "balance_per_class": 2, "epochs": 1, "batch_size": 16,
                                 "pyramid_channels": 64, "patience": None, "run_eagerly": True},
                         "vgg": {"config": "C", "image_size": 64, "epochs": 2, "batch_size": 16, "patience": 2},
                         "cnnc": {"input_size": 128, "epochs": 2, "steps_per_epoch": 6, "patience": None},
                         "inres": {"input_size": 64, "stem_filters": 16, "stages": 2, "fc1_units": 128, "epochs": 4,
                                   "batch_size": 16}},
        "data": {"max_per_class": 40, "examples_per_class": 4},
        "hog": {"max_per_class": 20, "test_max_per_class": 20, "sweep_bins": (9, 15),
                "val_fraction": 0.2, "n_example_queries": 4},
        "resnet50v2_fpn": {"max_per_class": 6, "input_size": 64, "balance_per_class": 2, "epochs": 1,
                           "batch_size": 16, "learning_rate": 1e-3, "patience": 3, "val_fraction": 0.2,
                           "feature_dim": 256, "pyramid_channels": 128, "ablation_levels": (),
                           "run_eagerly": True, "n_timing_queries": 5},
        "vgg_configs": {"max_per_class": 20, "image_size": 64, "epochs": 2, "batch_size": 16,
                        "learning_rate": 0.01, "patience": 2, "val_fraction": 0.1,
                        "ablation_configs": ("B", "F"), "combined_configs": ("F",)},
        "inres_hashing": {"unet_size": 96, "unet_filters": 8, "unet_depth": 3, "unet_epochs": 6, "unet_windows": 2,
                          "max_per_class": 60, "input_size": 64, "stem_filters": 16, "stages": 2, "fc1_units": 128,
                          "hash_bits": 48, "epochs": 10, "batch_size": 16, "learning_rate": 0.01, "momentum": 0.9,
                          "init_stddev": None,
                          "test_fraction": 0.3, "hamming_threshold": 8, "threshold_step": 2, "n_example_queries": 3},
        "cnnc_rbc": {"max_per_class": 12, "val_fraction": 0.2, "input_sizes": (128, 96), "epochs": 2,
                     "steps_per_epoch": 6, "batch_size": 32, "learning_rate": 1e-3, "patience": None,
                     "n_candidates": 50, "k": 10, "n_timing_queries": 3, "n_example_queries": 4,
                     "n_roi_examples": 3},
        "bovw_cnn": {"max_per_class": 10, "val_fraction": 0.2, "sift_vocab_sizes": (50, 100),
                     "rootsift_vocab_sizes": (100, 150), "kmeans_iter": 20, "kmeans_restarts": 1,
                     "max_descriptors_per_image": 100, "sift_image_size": None, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "mobilenet"), "k_preps": (10, 30),
                     "n_example_queries": 4},
        "scale": {"max_per_class": 20, "sizes": (10_000, 50_000), "n_queries": 100, "n_timing": 30},
    },
    "cpu": {
        "benchmark": {"fallback_sets": FALLBACK_SETS, "fallback_size": 64, "fallback_max_per_class": 1000},
        "side_by_side": {"max_per_class": None, "k": 10, "k_prep": 30, "n_timing_queries": 50, "bovw_words": 1000,
                         "fpn": {"input_size": 64, "balance_per_class": 40, "epochs": 4, "batch_size": 16,
                                 "pyramid_channels": 128, "patience": 2, "run_eagerly": False},
                         "vgg": {"config": "C", "image_size": 64, "epochs": 6, "batch_size": 32, "patience": 3},
                         "cnnc": {"input_size": 128, "epochs": 6, "steps_per_epoch": None, "patience": 3},
                         "inres": {"input_size": 64, "stem_filters": 16, "stages": 2, "fc1_units": 256, "epochs": 10,
                                   "batch_size": 32}},
        "data": {"max_per_class": None, "examples_per_class": 6},
        "hog": {"max_per_class": 150, "test_max_per_class": None, "sweep_bins": (6, 9, 12, 15, 18),
                "val_fraction": 0.2, "n_example_queries": 6},
        "resnet50v2_fpn": {"max_per_class": 40, "input_size": 64, "balance_per_class": 20, "epochs": 3,
                           "batch_size": 16, "learning_rate": 1e-3, "patience": 2, "val_fraction": 0.2,
                           "feature_dim": 256, "pyramid_channels": 128, "ablation_levels": (),
                           "run_eagerly": False, "n_timing_queries": 20},
        "vgg_configs": {"max_per_class": 50, "image_size": 64, "epochs": 4, "batch_size": 32,
                        "learning_rate": 0.01, "patience": 3, "val_fraction": 0.1,
                        "ablation_configs": ("B", "F"), "combined_configs": ("F", "G")},
        "inres_hashing": {"unet_size": 128, "unet_filters": 16, "unet_depth": 3, "unet_epochs": 15, "unet_windows": 3,
                          "max_per_class": None, "input_size": 128, "stem_filters": 32, "stages": 3, "fc1_units": 512,
                          "hash_bits": 48, "epochs": 20, "batch_size": 32, "learning_rate": 0.01, "momentum": 0.9,
                          "init_stddev": None,
                          "test_fraction": 0.3, "hamming_threshold": 8, "threshold_step": 2, "n_example_queries": 4},
        "cnnc_rbc": {"max_per_class": 60, "val_fraction": 0.2, "input_sizes": (128, 96), "epochs": 6,
                     "steps_per_epoch": None, "batch_size": 32, "learning_rate": 1e-3, "patience": 3,
                     "n_candidates": 50, "k": 10, "n_timing_queries": 20, "n_example_queries": 5,
                     "n_roi_examples": 4},
        "bovw_cnn": {"max_per_class": 100, "val_fraction": 0.2, "sift_vocab_sizes": (250, 500, 1000, 2000),
                     "rootsift_vocab_sizes": (1000, 2000, 3000), "kmeans_iter": 20, "kmeans_restarts": 1,
                     "max_descriptors_per_image": 50, "sift_image_size": None, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "mobilenet", "resnet50"),
                     "k_preps": (10, 20, 30, 50, 100), "n_example_queries": 6},
        "scale": {"max_per_class": None, "sizes": (30_000, 100_000, 300_000, 1_000_000), "n_queries": 200,
                  "n_timing": 100},
    },
    "paper": {
        "benchmark": {"fallback_sets": FALLBACK_SETS, "fallback_size": 128, "fallback_max_per_class": None},
        "side_by_side": {"max_per_class": None, "k": 10, "k_prep": 30, "n_timing_queries": 200, "bovw_words": 4000,
                         "fpn": {"input_size": 128, "balance_per_class": 200, "epochs": 500, "batch_size": 16,
                                 "pyramid_channels": 256, "patience": 10, "run_eagerly": False},
                         "vgg": {"config": "C", "image_size": 128, "epochs": 1000, "batch_size": 256, "patience": 20},
                         "cnnc": {"input_size": 128, "epochs": 50, "steps_per_epoch": None, "patience": None,
                                  "batch_size": 64},
                         "inres": {"input_size": 256, "stem_filters": 32, "stages": 4, "fc1_units": 1024, "epochs": 30,
                                   "batch_size": 32, "learning_rate": 1e-4, "momentum": 0.0, "init_stddev": 0.01}},
        "data": {"max_per_class": None, "examples_per_class": 8},
        "hog": {"max_per_class": None, "test_max_per_class": None, "sweep_bins": (6, 9, 12, 15, 18),
                "val_fraction": 0.2, "n_example_queries": 8},
        "resnet50v2_fpn": {"max_per_class": None, "input_size": 128, "balance_per_class": 200, "epochs": 500,
                           "batch_size": 16, "learning_rate": 1e-3, "patience": 10, "val_fraction": 0.2,
                           "feature_dim": 256, "pyramid_channels": 256,
                           "ablation_levels": (("P5",), ("P4", "P5"), ("P2", "P3")),
                           "run_eagerly": False, "n_timing_queries": 100},
        "vgg_configs": {"max_per_class": None, "image_size": 128, "epochs": 1000, "batch_size": 256,
                        "learning_rate": 0.01, "patience": 20, "val_fraction": 0.1,
                        "ablation_configs": ("A", "B", "C", "D", "E", "F"), "combined_configs": ("E", "F", "G")},
        "inres_hashing": {"unet_size": 256, "unet_filters": 32, "unet_depth": 4, "unet_epochs": 30, "unet_windows": 4,
                          "max_per_class": None, "input_size": 256, "stem_filters": 32, "stages": 4, "fc1_units": 1024,
                          "hash_bits": 48, "epochs": 30, "batch_size": 32, "learning_rate": 1e-4, "momentum": 0.0,
                          "init_stddev": 0.01,
                          "test_fraction": 0.3, "hamming_threshold": 8, "threshold_step": 2, "n_example_queries": 4},
        "cnnc_rbc": {"max_per_class": None, "val_fraction": 0.2, "input_sizes": (128, 96), "epochs": 50,
                     "steps_per_epoch": None, "batch_size": 64, "learning_rate": 1e-3, "patience": None,
                     "n_candidates": 50, "k": 10, "n_timing_queries": 100, "n_example_queries": 5,
                     "n_roi_examples": 5},
        "bovw_cnn": {"max_per_class": None, "val_fraction": 0.2,
                     "sift_vocab_sizes": (250, 500, 1000, 2000, 3000, 4000),
                     "rootsift_vocab_sizes": (3000, 3500, 4000), "kmeans_iter": 50, "kmeans_restarts": 5,
                     "max_descriptors_per_image": 0, "sift_image_size": 256, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "resnet50", "vgg16", "mobilenet"),
                     "k_preps": (10, 20, 30, 50, 100), "n_example_queries": 8},
        "scale": {"max_per_class": None, "sizes": (10_000, 30_000, 100_000, 300_000, 1_000_000),
                  "n_queries": 1000, "n_timing": 300},
    },
}


#: Images per class (and split) a dry run keeps: enough for a train / validation / test split of
#: every code. A section whose ``*_fraction`` is smaller keeps more (:func:`dry_run_per_class`).
DRY_RUN_PER_CLASS = 3
#: The per-class data caps of a section, capped to :func:`dry_run_per_class` in a dry run.
DRY_RUN_DATA = ("max_per_class", "test_max_per_class", "fallback_max_per_class")
#: What :func:`dry_run_settings` caps besides :data:`DRY_RUN_DATA`, by setting name (the nested sections of
#: ``side_by_side`` too). A value is an upper bound; `None` (no limit: every step) becomes the bound,
#: except for ``patience``, where `None` means no early stopping and stays. Every other setting
#: keeps its value.
DRY_RUN_CAPS: dict[str, int] = {
    # training: one epoch of at most two batches where the trainer takes a step cap, else one
    # short epoch over the capped data
    "epochs": 1, "unet_epochs": 1, "steps_per_epoch": 2, "patience": 1,
    # the FPN chapters' training set: one image per code after balancing, i.e. two batches of 16 for
    # the benchmark's 28 codes (the smoke profile covers the augmentation of small classes)
    "balance_per_class": 1,
    # U-Net training pairs: renderings of each Lung-PET-CT-Dx slice (the lung window only; the smoke
    # profile covers the random windows)
    "unet_windows": 1,
    # timing and example counts
    "n_timing_queries": 2, "n_timing": 2, "n_queries": 5, "n_example_queries": 2, "n_roi_examples": 2,
    "examples_per_class": 2,
    # k-means of the visual vocabularies: a few iterations, one restart. The vocabulary sizes stay
    # the paper's (up to 4000 words): the capped archives still hold more SIFT descriptors than that
    # (about 26,000 in bovw_cnn at 256 px, 7,500 in side_by_side at 128 px), which k-means needs.
    "kmeans_iter": 3, "kmeans_restarts": 1,
}
#: Sweeps a dry run shortens to their first values, by setting name: ablations that retrain
#: networks the chapter has already trained (VGG configurations A-G without dropout, with
#: augmentation, with both), the FPN trained on fewer pyramid levels (the first variant takes the
#: chapter's ablation path; the others differ only in the levels tapped) and paper 002's numbers of
#: candidates to re-rank (up to 100; the capped validation archive holds fewer images).
DRY_RUN_PREFIX: dict[str, int] = {"ablation_configs": 1, "combined_configs": 1, "ablation_levels": 1,
                                  "k_preps": 2}
#: Settings a dry run replaces: the archive sizes of the scale chapter, and ``run_eagerly`` (building
#: the graph of a ResNet's training step costs more on a CPU than the few steps it would speed up;
#: the ``cpu`` profile trains the same networks in graph mode).
DRY_RUN_VALUES: dict[str, object] = {"sizes": (1_000, 2_000), "run_eagerly": True}


def dry_run_per_class(settings: dict) -> int:
    """Images per class a dry run of ``settings`` keeps: :data:`DRY_RUN_PER_CLASS`, or more when a
    ``*_fraction`` (validation or test share, rounded per class) would leave a class without one."""
    fractions = [value for key, value in settings.items() if key.endswith("_fraction") and value]
    return max([DRY_RUN_PER_CLASS] + [math.floor(0.5 / f) + 1 for f in fractions])


def dry_run_settings(settings: dict) -> dict:
    """A copy of ``settings`` capped for a dry run: short trainings on a few images, same networks.

    Caps the per-class data of :data:`DRY_RUN_DATA` to :func:`dry_run_per_class` and the settings
    named in :data:`DRY_RUN_CAPS` (epochs to 1, ``steps_per_epoch`` to 2, ``patience`` to 1,
    timing and example counts to a few, ...), shortens the sweeps of :data:`DRY_RUN_PREFIX` and
    replaces the settings of :data:`DRY_RUN_VALUES`, in nested dicts too. Every other setting, in
    particular every architecture setting (input sizes, filters, stages, FC units, hash bits,
    pyramid channels, vocabulary sizes), keeps its value.
    """
    caps = {**DRY_RUN_CAPS, **dict.fromkeys(DRY_RUN_DATA, dry_run_per_class(settings))}
    capped = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            value = dry_run_settings(value)
        elif key in DRY_RUN_VALUES:
            value = DRY_RUN_VALUES[key]
        elif key in DRY_RUN_PREFIX:
            value = value[:DRY_RUN_PREFIX[key]]
        elif key in caps and not (key == "patience" and value is None):
            value = caps[key] if value is None else min(value, caps[key])
        capped[key] = value
    return capped



def get_profile(profile: str, section: str, *, dry_run: bool = False, **overrides) -> dict:
    """Settings of one notebook ``section`` under ``profile``, with keyword ``overrides``.

    With ``dry_run=True`` the settings are capped by :func:`dry_run_settings` (before the overrides).

    Raises:
        ValueError: unknown profile or section.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile. Use one of {sorted(PROFILES)}. Received: profile={profile!r}")
    sections = PROFILES[profile]
    if section not in sections:
        raise ValueError(f"Profile {profile!r} has no section {section!r}; it has {sorted(sections)}")
    settings = copy.deepcopy(sections[section])
    if dry_run:
        settings = dry_run_settings(settings)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)} for section {section!r}")
    settings.update(overrides)
    return settings
