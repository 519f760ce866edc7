"""The open multi-axis benchmark: eight real 2-D sets joined under one code scheme.

Every image gets a code ``MOD-region-finding`` (e.g. ``CT-abdomen-kidney_stone``),
the open stand-in for IRMA's multi-axis codes: the modality and the body region
give paper 002's two relevance axes, and the finding refines the region.

Where the data live (see :mod:`cbmir_tf.data.registry`):

* ``<folder>/<file>.npz`` for each member of :data:`REGISTRY` (the 128 px
  conversions), in ``$CBMIR_DATA_DIR`` or the cache; :func:`prepare` rebuilds them
  from their public source repositories (``cbmir-data fetch open-benchmark``);
* if none of them is present, the benchmark is built from MedMNIST 2D sets that the
  code downloads itself, with the same code scheme (``source="fallback"``); the
  profile picks the sets and the size (``smoke``: PneumoniaMNIST and BreastMNIST at 28 px).

The split is fixed: the source's own train/test split where it has one (its
validation images join the training split), otherwise a stratified 80/20 split
with seed 0. Sets without patient ids can leak a patient across the split; they
are listed in ``meta["patient_leakage"]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from cbmir_tf.config import DATA_DIR_ENV, data_dir
from cbmir_tf.data.dataset import ImageDataset, concatenate, stratified_split
from cbmir_tf.data.registry import entry, locate, status
from cbmir_tf.data.registry import verify as registry_verify
from cbmir_tf.data.io import atomic_write, sha256sum

BENCHMARK_SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a member's original images are: a public repository pinned to a commit.

    ``folders`` are the folders inside the repository that hold the images (searched
    recursively); ``class_dirs`` maps a folder name to the source class name where they
    differ (case-insensitive otherwise); ``labels_csv`` is a ``(csv path, image path
    pattern)`` pair for a set labelled by a table instead of folders; ``keep`` is the
    size of the stratified subset that was kept (`None`: all images).
    """

    repo: str
    commit: str
    folders: tuple[str, ...]
    class_dirs: dict[str, str] = dataclasses.field(default_factory=dict)
    labels_csv: tuple[str, str] | None = None
    keep: int | None = None

    @property
    def archive_url(self) -> str:
        """The repository's tarball at the pinned commit."""
        return f"https://codeload.github.com/{self.repo}/tar.gz/{self.commit}"


@dataclasses.dataclass(frozen=True)
class Member:
    """One labelled set of the benchmark and where it came from."""

    key: str
    folder: str
    filename: str
    title: str
    url: str
    licence: str
    modality: str
    region: str
    findings: dict[str, str]  # source class name -> finding token of the code
    source: Source
    has_split: bool = False
    note: str = ""

    @property
    def registry_name(self) -> str:
        """Its npz file's name in the data registry, e.g. ``kidney-ct/kidney_ct_128.npz``."""
        return f"{self.folder}/{self.filename}"

    @property
    def sha256(self) -> str:
        """The published npz's SHA-256, from the data registry."""
        return entry(self.registry_name).hash.removeprefix("sha256:")

    def codes(self) -> tuple[str, ...]:
        return tuple(f"{self.modality}-{self.region}-{f}" for f in self.findings.values())


REGISTRY: tuple[Member, ...] = (
    Member("brain-tumor-mri", "brain-tumor-mri", "brain_tumor_mri_128.npz",
           "Brain Tumor MRI Dataset (M. Nickparvar; figshare, SARTAJ, Br35H)",
           "https://www.kaggle.com/datasets/masoudnickparvar/brain-tumor-mri-dataset",
           "CC0 (Kaggle listing); figshare part CC BY 4.0", "MR", "brain",
           {"glioma": "glioma", "meningioma": "meningioma", "notumor": "no_tumor", "pituitary": "pituitary"},
           Source("KomalChaudhari8/BRAIN_TUMOR_APP", "1fac2c320ad3f98cb71ce79d5d1490a953eaa1ec",
                  ("Training", "Testing"), keep=3500),
           has_split=True),
    Member("alzheimer-mri", "alzheimer-mri", "alzheimer_mri_128.npz",
           "Alzheimer MRI Preprocessed Dataset (S. Kumar)",
           "https://www.kaggle.com/datasets/sachinkumar413/alzheimer-mri-dataset",
           "unknown (upstream said ODbL 1.0)", "MR", "brain",
           {"Non_Demented": "dementia_none", "Very_Mild_Demented": "dementia_very_mild",
            "Mild_Demented": "dementia_mild", "Moderate_Demented": "dementia_moderate"},
           Source("jakepatock/Convolutional_Neural_Network_for_Dementia_Stage_Detection",
                  "b62782c2266bcb185e63fd1ed0eba53b876ef578", ("Dataset",), keep=1500),
           note="neighbouring slices of the same subjects"),
    Member("knee-oa-xray", "knee-oa-xray", "knee_oa_kl_128.npz",
           "Knee Osteoarthritis Severity Grading Dataset, kneeKL224 (P. Chen 2018, OAI)",
           "https://data.mendeley.com/datasets/56rmx5bjcr/1", "CC BY 4.0", "XR", "knee",
           {f"KL{g}": f"kl{g}" for g in range(5)},
           Source("Rohan-145/KneeOA_Analysis", "614e752c1b6e13469ec1a278f5dd2bebbecd68fb", ("train", "val", "test"),
                  {str(g): f"KL{g}" for g in range(5)}, keep=2500),
           has_split=True),
    Member("covid19-cxr-3class", "covid19-cxr-3class", "covid19_cxr_3class_128.npz",
           "Covid-19 Image Dataset, 3-way (P. Raikokte)",
           "https://www.kaggle.com/datasets/pranavraikokte/covid19-image-dataset", "unclear / mixed",
           "XR", "chest", {"Normal": "normal", "Covid": "covid", "Viral Pneumonia": "viral_pneumonia"},
           Source("Denylson-Fuentes/CSE_185-Computer-Vision-Project-", "43f26d5ba79518bd76942c0d2a4ecdd6a062b7d6",
                  ("Covid19-dataset/train", "Covid19-dataset/test")),
           has_split=True, note="class confounded with image source"),
    Member("kidney-ct", "kidney-ct", "kidney_ct_128.npz",
           "CT KIDNEY DATASET: Normal-Cyst-Tumor and Stone (Islam et al. 2022)",
           "https://www.kaggle.com/datasets/nazmul0087/ct-kidney-dataset-normal-cyst-tumor-and-stone",
           "unknown", "CT", "abdomen",
           {"Cyst": "kidney_cyst", "Normal": "kidney_normal", "Stone": "kidney_stone", "Tumor": "kidney_tumor"},
           Source("showaibbinnasir/kidneyDiseas", "d342db921dbf87b14b6a7736f8839ae5b035a071", ("Training",)),
           note="consecutive slices of few patients"),
    Member("lung-ct-iq-oth-nccd", "lung-ct-iq-oth-nccd", "iq_oth_nccd_lung_ct_128.npz",
           "The IQ-OTH/NCCD lung cancer dataset (Alyasriy & AL-Huseiny)",
           "https://data.mendeley.com/datasets/bhmdr45bh2", "CC BY 4.0", "CT", "chest",
           {"Normal": "lung_normal", "Benign": "lung_benign", "Malignant": "lung_malignant"},
           Source("Yusshiro/IQ-OTHNCCD-lung-cancer-detection", "4cbd7c966c8530e1d55b3ecbf9342b8e06cbc06d",
                  ("The IQ-OTHNCCD lung cancer dataset",),
                  {"Normal cases": "Normal", "Bengin cases": "Benign", "Malignant cases": "Malignant"}),
           note="several slices per case"),
    Member("head-ct-hemorrhage", "head-ct-hemorrhage", "head_ct_hemorrhage_128.npz",
           "Head CT - hemorrhage (F. Kitamura)",
           "https://www.kaggle.com/datasets/felipekitamura/head-ct-hemorrhage", "unknown", "CT", "brain",
           {"no_hemorrhage": "no_hemorrhage", "hemorrhage": "hemorrhage"},
           Source("Roiabr/Head-CT-hemorrhage-detection", "36b7fe82b5eaf326cbf4064cde22831c9093ef8d",
                  ("Dataset/head_ct",), labels_csv=("Dataset/labels.csv", "Dataset/head_ct/{id:03d}.png"))),
    Member("busi-ultrasound", "busi-ultrasound", "busi_breast_us_128.npz",
           "Breast Ultrasound Images Dataset, BUSI (Al-Dhabyani et al. 2020)",
           "https://scholar.cu.edu.eg/?q=afahmy/pages/dataset", "CC BY 4.0", "US", "breast",
           {"normal": "normal", "benign": "benign", "malignant": "malignant"},
           Source("TongxinWang0405/BMI702_project", "922c9469dff20e816d3144880eadd28cdad8efa2",
                  ("Dataset_BUSI_with_GT",))),
)
MEMBERS = {m.key: m for m in REGISTRY}


def available_members(root=None) -> list[Member]:
    """Members whose npz is here (data folder or cache); they are never downloaded as such."""
    return [m for m in REGISTRY if status(m.registry_name, root) in {"present", "cached"}]


def load_member(member: str | Member, root=None, *, verify: bool = True) -> ImageDataset:
    """Load one member set in the benchmark's form (codes as class names, fixed split)."""
    member = MEMBERS[member] if isinstance(member, str) else member
    found = locate(member.registry_name, root)
    if found is None:
        raise FileNotFoundError(
            f"{member.registry_name}: not found under {DATA_DIR_ENV} or the cache. Run `cbmir-data fetch "
            f"{member.key}` to rebuild it from {member.source.repo}, or set {DATA_DIR_ENV} to a folder holding it.")
    path = found[0]
    sidecar = path.with_name(path.name + ".sha256")
    if verify and sidecar.exists():  # rebuilt here by prepare(): its own checksum
        expected = dataclasses.replace(entry(member.registry_name), hash="sha256:" + sidecar.read_text().split()[0])
        registry_verify(path, expected)
    elif verify:
        registry_verify(path, entry(member.registry_name))
    with np.load(path, allow_pickle=False) as npz:
        images, labels = npz["images"], npz["labels"].astype(np.int64)
        source_names = [str(c) for c in npz["class_names"]]
        split = npz["split"] if "split" in npz.files else None
        sources = npz["source_paths"]
    unknown = set(source_names) - set(member.findings)
    if unknown:
        raise ValueError(f"{path}: class names {sorted(unknown)} are not in the registry entry '{member.key}'")
    codes = np.array([f"{member.modality}-{member.region}-{member.findings[source_names[l]]}" for l in labels])
    if split is None:
        split = stratified_split(labels, TEST_FRACTION, BENCHMARK_SPLIT_SEED)
    else:
        split = np.where(np.asarray(split) == "val", "train", np.asarray(split))
    class_names = member.codes()
    order = {source_names[i]: class_names.index(f"{member.modality}-{member.region}-{member.findings[n]}")
             for i, n in enumerate(source_names)}
    labels = np.array([order[source_names[l]] for l in labels], dtype=np.int64)
    return ImageDataset(
        images, labels, class_names, split, np.array([f"{member.key}:{s}" for s in sources]), codes,
        name=member.key,
        meta={"origin": member.url, "licence": member.licence, "sha256": member.sha256,
              "patient_leakage": not member.has_split},
    )


def load_benchmark(root=None, *, source: str = "auto", members=None, max_per_class: int | None = None,
                   seed: int = 0, verify: bool = True, profile: str = "cpu",
                   dry_run: bool = False) -> ImageDataset:
    """Load the open multi-axis benchmark as one `ImageDataset` of grey images coded by modality and region.

    Args:
        root: Data directory. Defaults to ``$CBMIR_DATA_DIR``.
        source: ``"local"`` (the eight sets' npz files), ``"fallback"`` (MedMNIST 2D sets,
            downloaded if absent) or ``"auto"`` (local when any member is present).
            Defaults to ``"auto"``.
        members: Keys of the registry to include. Defaults to every one present.
        max_per_class: Keep at most this many images per class and split (seeded).
            Defaults to `None` (all).
        seed: Seed of that subsampling (the split itself is fixed). Defaults to 0.
        verify: Check each file's checksum against the data registry. Defaults to `True`.
        profile: The profile whose ``benchmark`` section picks the fallback's MedMNIST sets,
            image size and subsample. Defaults to ``"cpu"``.
        dry_run: Read that section capped for a dry run (``get_profile(..., dry_run=True)``).
            Defaults to `False`.

    Returns:
        An `ImageDataset` whose class names are the codes ``MOD-region-finding``, with
        ``meta["members"]``, ``meta["source"]`` (``"local"`` or ``"fallback"``) and
        ``meta["patient_leakage"]``. The eight sets are 128 px; the fallback has the
        profile's MedMNIST size.
    """
    if source not in {"auto", "local", "fallback"}:
        raise ValueError(f"source must be 'auto', 'local' or 'fallback'. Received: source={source!r}")
    present = available_members(root)
    if source == "fallback" or (source == "auto" and not present and members is None):
        parts, source = fallback_parts(root, profile, seed, dry_run), "fallback"
    else:
        chosen = [MEMBERS[k] for k in members] if members else present
        if not chosen:
            raise FileNotFoundError(
                f"No benchmark set found under {data_dir(root)}. Set {DATA_DIR_ENV} (see README, 'Data'), "
                "run `cbmir-data fetch open-benchmark`, or use source='fallback'."
            )
        parts, source = [load_member(m, root, verify=verify) for m in chosen], "local"
    if max_per_class:
        parts = [p.stratified_sample(max_per_class, seed) for p in parts]
    benchmark = concatenate(parts, name="open-benchmark")
    leaky = [p.name for p in parts if p.meta.get("patient_leakage")]
    if leaky:
        warnings.warn(f"No patient ids in {', '.join(leaky)}: their split may leak patients.", stacklevel=2)
    meta = {"members": [p.name for p in parts], "patient_leakage": leaky, "source": source,
            "max_per_class": max_per_class, "seed": seed,
            "files": {p.name: p.meta.get("file", "") for p in parts}}
    return dataclasses.replace(benchmark, meta=meta)


def benchmark_split(root=None, *, profile: str = "cpu", seed: int = 0, dry_run: bool = False):
    """The open benchmark as every method chapter uses it: ``(benchmark, archive, queries)``.

    The archive is the benchmark's training split and the queries its test split, with the
    profile's ``benchmark.max_per_class`` subset. Every chapter that trains a method calls this,
    so that they all train on the same archive and share the trained networks
    (:mod:`cbmir_tf.methods.cache`).
    """
    from cbmir_tf.profiles import get_profile

    settings = get_profile(profile, "benchmark", dry_run=dry_run)
    benchmark = load_benchmark(root, max_per_class=settings["max_per_class"], seed=seed, profile=profile,
                               dry_run=dry_run)
    return benchmark, benchmark.take_split("train"), benchmark.take_split("test")


def fallback_parts(root=None, profile: str = "cpu", seed: int = 0,
                   dry_run: bool = False) -> list[ImageDataset]:
    """The benchmark without its eight sets: the profile's MedMNIST 2D sets, coded like them.

    Each set keeps its official split (validation joins training) and each image its code,
    e.g. ``XR-chest-pneumonia`` or ``CT-abdomen-liver``; the class names are those codes.
    """
    from cbmir_tf.data.medmnist import load_medmnist
    from cbmir_tf.profiles import get_profile

    settings = get_profile(profile, "benchmark", dry_run=dry_run)
    parts = []
    for flag in settings["fallback_sets"]:
        data = load_medmnist(flag, settings["fallback_size"], root=root,
                             max_per_class=settings["fallback_max_per_class"], seed=seed)
        parts.append(coded(data))
    return parts


def coded(dataset: ImageDataset) -> ImageDataset:
    """``dataset`` with its codes as class names and validation images moved to training."""
    code_of = {int(label): str(code) for label, code in zip(dataset.labels, dataset.codes)}
    class_names = tuple(code_of[label] for label in sorted(code_of))
    remap = {label: i for i, label in enumerate(sorted(code_of))}
    labels = np.array([remap[int(label)] for label in dataset.labels], dtype=np.int64)
    split = np.where(dataset.split == "val", "train", dataset.split)
    return dataclasses.replace(dataset, labels=labels, class_names=class_names, split=split)


def describe_source(dataset: ImageDataset) -> str:
    """A phrase naming where a loaded benchmark came from and its image size, for a chapter's text."""
    if dataset.meta.get("source") == "fallback":
        what = "the MedMNIST fallback of the open benchmark (" + ", ".join(dataset.meta["members"]) + ")"
    else:
        what = "the eight sets of the open benchmark"
    return f"{what}, {dataset.images.shape[1]} px"


def source_label(dataset: ImageDataset) -> str:
    """A short column label for this build's numbers: ``ours (open benchmark)`` or ``ours (MedMNIST fallback)``."""
    return "ours (MedMNIST fallback)" if dataset.meta.get("source") == "fallback" else "ours (open benchmark)"


def composition(dataset: ImageDataset) -> "pandas.DataFrame":  # noqa: F821
    """One row per code: modality, region, finding and the train/test counts."""
    import pandas as pd

    table = dataset.summary().reset_index()
    parts = table["class"].astype(str).str.split("-", n=2, expand=True)
    table.insert(1, "modality", parts[0])
    table.insert(2, "region", parts[1])
    table.insert(3, "finding", parts[2])
    return table.rename(columns={"class": "code"})


# -- prepare: a member's original images -> the benchmark's npz form --------------------------------

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def convert_source_image(path: str | os.PathLike, size: int = 128) -> tuple[np.ndarray, tuple[int, int]]:
    """One source file as the benchmark stores it, and its original ``(width, height)``.

    The recipe of the data READMEs, with Pillow: transparency composited on black, 8-bit
    grey (ITU-R 601-2 luma), centre-padded with black to a square, area-resized (``BOX``).
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        original = image.size
        if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        grey = image.convert("L")
    side = max(grey.size)
    square = Image.new("L", (side, side), 0)
    square.paste(grey, ((side - grey.width) // 2, (side - grey.height) // 2))
    return np.asarray(square.resize((size, size), Image.BOX), dtype=np.uint8), original


def source_records(member: Member, source_root: str | os.PathLike) -> list[tuple[str, str, str]]:
    """``(path relative to the repository, source class, split)`` of every labelled source image."""
    root, spec = Path(source_root), member.source
    if spec.labels_csv is not None:
        import pandas as pd

        table_path, pattern = spec.labels_csv
        table = pd.read_csv(root / table_path, skipinitialspace=True)
        id_column, label_column = table.columns[:2]
        names = list(member.findings)
        return [(pattern.format(id=int(i)), names[int(v)], "") for i, v in zip(table[id_column], table[label_column])
                if (root / pattern.format(id=int(i))).is_file()]
    aliases = {name.lower(): name for name in member.findings}
    aliases.update({folder.lower(): name for folder, name in spec.class_dirs.items()})
    records = []
    for folder in spec.folders:
        for path in (root / folder).rglob("*"):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):  # e.g. .ipynb_checkpoints/
                continue
            parents = [p.name.lower() for p in relative.parents]
            label = next((aliases[p] for p in parents if p in aliases), None)
            if label is not None:
                split = next((SPLIT_FOLDERS[p] for p in parents if p in SPLIT_FOLDERS), "")
                records.append((relative.as_posix(), label, split))
    return records


def prepare(member: str, source_root: str | os.PathLike, root=None, size: int = 128) -> Path:
    """Convert a member's original images (a checkout of its source repository) into its npz.

    Follows the recipe of the data READMEs: files in sorted path order; byte-identical files
    kept once (the first path) and dropped altogether if their labels disagree; each image
    converted by :func:`convert_source_image`; where the registry keeps a subset, a
    stratified one by (split, class) with largest-remainder allocation and seed 0. The npz
    is written atomically to ``<data dir>/<folder>/<filename>`` with a ``.sha256`` sidecar.

    Returns:
        The path of the written file.
    """
    entry_, source = MEMBERS[member], Path(source_root)
    records = sorted(source_records(entry_, source))
    if not records:
        raise FileNotFoundError(f"{source}: no images of {entry_.key} under {', '.join(entry_.source.folders)}")
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for record in records:
        groups.setdefault(sha256sum(source / record[0]), []).append(record)
    keep = sorted(group[0] for group in groups.values() if len({label for _, label, _ in group}) == 1)
    class_names = list(entry_.findings)
    if entry_.source.keep:
        keep = stratified_subset(keep, entry_.source.keep, class_names)
    converted = [convert_source_image(source / path, size) for path, _, _ in keep]
    arrays = {
        "images": np.stack([pixels for pixels, _ in converted]),
        "labels": np.array([class_names.index(label) for _, label, _ in keep], dtype=np.int64),
        "class_names": np.array(class_names),
        "source_paths": np.array([path for path, _, _ in keep]),
        "original_size_wh": np.array([wh for _, wh in converted], dtype=np.int32),
    }
    if entry_.has_split:  # kidney-ct's Training/ folder is no split: its Testing/ copies it
        arrays["split"] = np.array([split for _, _, split in keep])
    out = data_dir(root) / entry_.folder / entry_.filename
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        np.savez_compressed(tmp, **arrays)
        digest = sha256sum(tmp)
    with atomic_write(out.with_name(out.name + ".sha256"), "w") as sidecar:
        sidecar.write(f"{digest}  {out.name}\n")
    return out


def stratified_subset(records: list[tuple[str, str, str]], total: int, class_names: list[str],
                      seed: int = 0) -> list[tuple[str, str, str]]:
    """A seeded subset of ``total`` records, stratified by (split, class), in sorted path order.

    Strata go in the order of split name (test, train, val) and class (``class_names``). Each gets
    its proportional share rounded down, and the strata with the largest remainders one more
    until ``total`` is reached; one ``numpy.random.default_rng(seed)`` then draws each
    stratum's records in turn with ``choice(..., replace=False)``.
    """
    strata: dict[tuple[str, int], list] = {}
    for record in records:
        key = (record[2], class_names.index(record[1]))
        strata.setdefault(key, []).append(record)
    keys = sorted(strata)
    shares = {key: total * len(strata[key]) / len(records) for key in keys}
    counts = {key: int(shares[key]) for key in keys}
    by_remainder = sorted(keys, key=lambda key: -(shares[key] - counts[key]))
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for key in keys:
        picks = rng.choice(len(strata[key]), counts[key], replace=False)
        chosen += [strata[key][i] for i in picks]
    return sorted(chosen)


def prepare_cli(argv=None) -> None:
    """``cbmir-prepare MEMBER SOURCE_ROOT``: the command-line face of :func:`prepare`."""
    parser = argparse.ArgumentParser(description=prepare.__doc__.splitlines()[0])
    parser.add_argument("member", choices=sorted(MEMBERS))
    parser.add_argument("source_root", help="a checkout of the member's source repository")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    out = prepare(args.member, args.source_root, size=args.size)
    print(f"wrote {out} (and its .sha256 sidecar)")
