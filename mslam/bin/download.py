"""Fetch a corpus's files from its URL base into a directory, resumably, verifying sha256 checksums.

    python -m mslam.bin.download --base-url https://dl.fbaipublicfiles.com/covost --out downloads/covost2 \\
        covost_v2.de_en.tsv.tar.gz
    python -m mslam.bin.prepare_<corpus> files --langs ... | \\
        python -m mslam.bin.download --base-url URL --out DIR --list - --checksums SHA256SUMS
    python -m mslam.bin.download --base-url /data/mirror/voxpopuli --out DIR --list files.txt   # local mirror

Each PATH is fetched from `<base-url>/<PATH>` into `<out>/<PATH>` (via `<out>/<PATH>.part`, continued by a
rerun). Files already there are verified and skipped when whole: against their sha256 where the checksums
file lists one, otherwise their size against the source's and, for tar, zip and gzip files, a check that
the archive reads to its end; cut-short or damaged ones are fetched again. Ends with
`N fetched, M already present, X MiB` (X: the size of the fetched files).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mslam.data.download import DownloadError, download_all, read_checksums, read_path_list


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True, help="https://, http://, file:// URL or a local directory")
    p.add_argument("--out", required=True, type=Path, help="directory the files are written under")
    p.add_argument("--checksums", type=Path, help="sha256sum-format file: '<hex>  <relative path>' per line")
    p.add_argument("--list", dest="list_file", help="file with one relative path a line; '-' reads stdin")
    p.add_argument("--retries", type=int, default=3, help="retries of a transient failure per file (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("paths", nargs="*", metavar="PATH", help="relative paths under the URL base")
    args = p.parse_args(argv)
    if not args.paths and args.list_file is None:
        p.error("give the relative PATHs to fetch, or --list FILE (- for stdin)")
    if args.retries < 0:
        p.error("--retries must be 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        paths = list(args.paths)
        if args.list_file == "-":
            paths += read_path_list(sys.stdin)
        elif args.list_file is not None:
            paths += read_path_list(_read_lines(Path(args.list_file)))
        checksums = read_checksums(args.checksums) if args.checksums else None
        summary = download_all(args.base_url, paths, args.out, checksums=checksums, retries=args.retries,
                               progress=not args.no_progress)
    except DownloadError as e:
        print(f"download: {e}", file=sys.stderr)
        return 1
    print(f"{summary['fetched']} fetched, {summary['present']} already present, "
          f"{summary['bytes'] / 2 ** 20:.1f} MiB")
    return 0


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DownloadError(f"{path}: cannot read the path list ({e})") from None


if __name__ == "__main__":
    sys.exit(main())
