"""Parameter profiles of the notebooks: ``smoke``, ``cpu`` and ``paper``.

* ``smoke``: a few minutes on 2 CPU cores, for CI (small per-class subsets, short sweeps).
* ``cpu``: the default of ``make book``; the whole open benchmark, CPU-sized sweeps and epochs.
* ``paper``: the papers' own sizes and settings, meant for a GPU (e.g. Colab).

A notebook reads its settings with ``settings = get_profile(profile, "hog")``;
nothing further down in a notebook hard-codes a size or an epoch count.
"""

from __future__ import annotations

import copy

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


def get_profile(profile: str, section: str, **overrides) -> dict:
    """Settings of one notebook ``section`` under ``profile``, with keyword ``overrides``.

    Raises:
        ValueError: unknown profile or section.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile. Use one of {sorted(PROFILES)}. Received: profile={profile!r}")
    sections = PROFILES[profile]
    if section not in sections:
        raise ValueError(f"Profile {profile!r} has no section {section!r}; it has {sorted(sections)}")
    settings = copy.deepcopy(sections[section])
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)} for section {section!r}")
    settings.update(overrides)
    return settings
