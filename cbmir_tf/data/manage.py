"""The ``cbmir-data`` command: list, fetch and mirror the files of the data registry.

    cbmir-data list                       # every file: size, licence, where it is
    cbmir-data fetch medmnist/breastmnist.npz dicom/CT_small.dcm
    cbmir-data fetch --all                # every downloadable file
    cbmir-data fetch open-benchmark       # rebuild the eight sets from their sources
    cbmir-data mirror DATA_FOLDER mirror/      # lay out a data folder as a download mirror

Errors are one line on stderr and a non-zero exit; ``fetch`` goes on past a file that
fails and lists the failures at the end.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
from pathlib import Path

from cbmir_tf.config import cache_dir, data_dir
from cbmir_tf.data import registry


def _message(error: Exception) -> str:
    """An exception as one line (a `KeyError` without the quotes its ``str`` adds)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _size(item: registry.DataFile) -> str:
    return f"{item.size / 1e6:.2f} MB" if item.size else "?"


def list_files(args) -> int:
    """Print one line per registered file: name, size, status, licence and source."""
    rows = [(item.name, _size(item), registry.status(item.name), item.licence, item.source)
            for item in registry.registry().values()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row[:3], widths)), "|", row[3], "|", row[4])
    known = [item.size for item in registry.registry().values() if item.size]
    print(f"{len(rows)} files; {sum(known) / 1e6:.1f} MB in the {len(known)} of known size")
    return 0


def fetch_files(args) -> int:
    """Fetch the named files (or registry folders, or ``open-benchmark`` / member keys)."""
    from cbmir_tf.data.benchmark import MEMBERS

    names = [item.name for item in registry.registry().values() if item.url] if args.all else args.names
    if not names:
        print("cbmir-data fetch: name files, folders or open-benchmark, or pass --all", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        try:
            if name == "open-benchmark" or name in MEMBERS:
                keys = list(MEMBERS) if name == "open-benchmark" else [name]
                failed += [key for key in keys if not rebuild_member(key)]
                continue
            for target in registry.file_names(name):
                print(f"{target}: {registry.fetch(target, progressbar=sys.stderr.isatty())}")
        except (FileNotFoundError, ValueError, KeyError, OSError) as err:
            print(f"cbmir-data: {_message(err)}", file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"cbmir-data: {len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def rebuild_member(key: str) -> bool:
    """Download one member's source repository at its commit, run ``prepare`` and check the sha256."""
    from cbmir_tf.data.benchmark import MEMBERS, prepare

    member = MEMBERS[key]
    spec = member.source
    print(f"{key}: {member.title}\n  licence: {member.licence}\n  source: {spec.repo}@{spec.commit[:10]} "
          f"({', '.join(spec.folders)})")
    if registry.status(member.registry_name) in {"present", "cached"}:
        print(f"  {member.registry_name}: already here")
        return True
    target = data_dir() / member.registry_name
    try:
        checkout = _download_source(member)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:  # moved into place only if it matches
            built = prepare(key, checkout, root=tmp)
            registry.verify(built, registry.entry(member.registry_name))
            built.with_name(built.name + ".sha256").unlink()
            built.replace(target)
    except (FileNotFoundError, ValueError, OSError, tarfile.TarError) as err:
        print(f"cbmir-data: {key}: {err}", file=sys.stderr)
        return False
    print(f"  {target}: sha256 matches the published file")
    return True


def _download_source(member) -> Path:
    """The member's source folders, extracted from its repository tarball into the cache."""
    import pooch

    spec = member.source
    target = cache_dir() / "sources" / f"{member.key}-{spec.commit[:10]}"
    if target.is_dir():
        return target
    if not registry.downloads_allowed():
        raise FileNotFoundError(f"{spec.archive_url}: downloads are off ({registry.ALLOW_DOWNLOAD_ENV}=0)")
    url = registry.mirror_url(spec.archive_url)
    # GitHub's tarballs are not byte-stable, so the archive has no checksum: the npz built
    # from it is checked against the registry instead.
    archive = pooch.retrieve(url, known_hash=None, fname=f"{member.key}-{spec.commit[:10]}.tar.gz",
                             path=cache_dir() / "sources", progressbar=sys.stderr.isatty())
    wanted = list(spec.folders) + ([spec.labels_csv[0]] if spec.labels_csv else [])
    with tempfile.TemporaryDirectory(dir=cache_dir() / "sources") as tmp, tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers()
                   if any(m.name.split("/", 1)[-1].startswith(w) for w in wanted)]
        tar.extractall(tmp, members=members, filter="data")
        top = next(Path(tmp).iterdir())  # <repo>-<commit>/
        top.rename(target)
    Path(archive).unlink()
    return target


def mirror(args) -> int:
    """Lay out the registered files found in a data folder as a download mirror."""
    placed = registry.make_mirror(args.data_folder, args.out)
    size = sum(item.size or 0 for item in placed)
    print(f"mirrored {len(placed)} files ({size / 1e6:.1f} MB) from {args.data_folder} into {args.out}; "
          f"serve it and set {registry.MIRROR_ENV}=<its base URL>")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cbmir-data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every registered file and where it is").set_defaults(run=list_files)
    fetch = commands.add_parser("fetch", help="fetch files, folders, open-benchmark or a member")
    fetch.add_argument("names", nargs="*")
    fetch.add_argument("--all", action="store_true", help="every downloadable file")
    fetch.set_defaults(run=fetch_files)
    lay = commands.add_parser("mirror", help="lay out a data folder as a download mirror")
    lay.add_argument("data_folder", type=Path)
    lay.add_argument("out", type=Path)
    lay.set_defaults(run=mirror)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, KeyError, OSError) as err:
        print(f"cbmir-data: {_message(err)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
