"""Parameter profiles of the notebooks: ``smoke``, ``cpu`` and ``paper``.

* ``smoke``: a few minutes on 2 CPU cores, for CI (small per-class subsets, short sweeps).
* ``cpu``: the default of ``make book``; the whole open benchmark, CPU-sized sweeps and epochs.
* ``paper``: the papers' own sizes and settings, meant for a GPU (e.g. Colab).

A notebook reads its settings with ``settings = get_profile(profile, "hog")``;
nothing further down in a notebook hard-codes a size or an epoch count.
"""

from __future__ import annotations

import copy

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {
        "data": {"max_per_class": 40, "examples_per_class": 4},
        "hog": {"max_per_class": 20, "sweep_bins": (9, 15), "grid": "paper", "val_fraction": 0.2,
                "n_example_queries": 4},
        "bovw_cnn": {"max_per_class": 12, "val_fraction": 0.2, "sift_vocab_sizes": (50, 100),
                     "rootsift_vocab_sizes": (100, 150), "kmeans_iter": 20, "kmeans_restarts": 1,
                     "max_descriptors_per_image": 100, "sift_image_size": None, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "resnet50", "vgg16", "mobilenet"), "k_preps": (10, 30),
                     "n_example_queries": 4},
    },
    "cpu": {
        "data": {"max_per_class": None, "examples_per_class": 6},
        "hog": {"max_per_class": 150, "sweep_bins": (6, 9, 12, 15, 18), "grid": "paper",
                "val_fraction": 0.2, "n_example_queries": 6},
        "bovw_cnn": {"max_per_class": 100, "val_fraction": 0.2, "sift_vocab_sizes": (250, 500, 1000, 2000),
                     "rootsift_vocab_sizes": (1000, 2000, 3000), "kmeans_iter": 20, "kmeans_restarts": 1,
                     "max_descriptors_per_image": 50, "sift_image_size": None, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "resnet50", "vgg16", "mobilenet"),
                     "k_preps": (10, 20, 30, 50, 100), "n_example_queries": 6},
    },
    "paper": {
        "data": {"max_per_class": None, "examples_per_class": 8},
        "hog": {"max_per_class": None, "sweep_bins": (6, 9, 12, 15, 18), "grid": "paper",
                "val_fraction": 0.2, "n_example_queries": 8},
        "bovw_cnn": {"max_per_class": None, "val_fraction": 0.2,
                     "sift_vocab_sizes": (250, 500, 1000, 2000, 3000, 4000),
                     "rootsift_vocab_sizes": (3000, 3500, 4000), "kmeans_iter": 50, "kmeans_restarts": 5,
                     "max_descriptors_per_image": 0, "sift_image_size": 256, "cnn_input_size": 256,
                     "cnn_models": ("squeezenet", "resnet50", "vgg16", "mobilenet"),
                     "k_preps": (10, 20, 30, 50, 100), "n_example_queries": 8},
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
