"""Find the shipped assets: rules, dashboards, runbooks and the compose stack.

A wheel carries them under ``tta_observability/_assets/<kind>`` (pyproject force-includes the
repo-root folders there). A source checkout or an editable install has no ``_assets`` next to
the package, so the repo-root folders are used instead; which one was found is never guessed
from the environment, only from what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

#: Asset kind -> folder at the repository root.
SOURCE_FOLDERS: Final = {
    "rules": "rules",
    "dashboards": "dashboards",
    "runbooks": "docs/runbooks",
    "compose": "compose",
}
KINDS: Final = tuple(SOURCE_FOLDERS)

# Files that only keep an empty folder in git; never shipped to users.
_IGNORED_NAMES: Final = frozenset({".gitkeep", ".DS_Store"})
_IGNORED_DIRS: Final = frozenset({"__pycache__"})
# A source checkout may hold the user's real secrets next to the shipped files (compose/.env,
# compose/alertmanager/secrets/*): exporting must never copy them.
_SECRET_NAMES: Final = frozenset({".env"})
_SECRET_DIRS: Final = frozenset({"secrets"})
_KEPT_IN_SECRET_DIRS: Final = frozenset({"README.md", ".gitignore"})


class AssetError(LookupError):
    """An asset kind is unknown, or its files cannot be found."""


@dataclass(frozen=True)
class AssetFile:
    """One shipped file: its path relative to the kind's folder, and a handle to read it."""

    relpath: str
    source: Traversable

    def read_bytes(self) -> bytes:
        return self.source.read_bytes()

    def read_text(self) -> str:
        return self.source.read_bytes().decode("utf-8")


def check_kind(kind: str) -> str:
    if kind not in SOURCE_FOLDERS:
        raise AssetError(f"unknown asset kind {kind!r}: choose one of {', '.join(KINDS)}")
    return kind


def _source_root() -> Path | None:
    """The repository root when this module runs from a source checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def asset_dir(kind: str) -> Traversable:
    """The folder holding the shipped files of ``kind``."""
    check_kind(kind)
    packaged = resources.files("tta_observability").joinpath("_assets", kind)
    if packaged.is_dir():
        return packaged
    root = _source_root()
    if root is not None and (root / SOURCE_FOLDERS[kind]).is_dir():
        return root / SOURCE_FOLDERS[kind]
    raise AssetError(
        f"the {kind} assets are missing: neither tta_observability/_assets/{kind} in the installed "
        f"package nor {SOURCE_FOLDERS[kind]}/ in a source checkout exists; reinstall "
        "tta-observability from a wheel"
    )


def _shipped(name: str, in_secret_dir: bool) -> bool:
    if name in _IGNORED_NAMES or name in _SECRET_NAMES:
        return False
    return not in_secret_dir or name in _KEPT_IN_SECRET_DIRS


def _walk(folder: Traversable, prefix: str, in_secret_dir: bool = False) -> list[AssetFile]:
    found: list[AssetFile] = []
    for entry in folder.iterdir():
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            if entry.name not in _IGNORED_DIRS:
                secret = in_secret_dir or entry.name in _SECRET_DIRS
                found.extend(_walk(entry, rel + "/", secret))
        elif entry.is_file() and _shipped(entry.name, in_secret_dir):
            found.append(AssetFile(rel, entry))
    return found


def asset_files(kind: str) -> list[AssetFile]:
    """Every shipped file of ``kind``, sorted by relative path."""
    return sorted(_walk(asset_dir(kind), ""), key=lambda f: f.relpath)


def asset_file(kind: str, relpath: str) -> AssetFile:
    """One shipped file, for example ``asset_file("compose", "alertmanager/alertmanager.yml")``."""
    for item in asset_files(kind):
        if item.relpath == relpath:
            return item
    raise AssetError(f"the {kind} assets hold no file {relpath!r}")


class ExportConflict(FileExistsError):
    """Files in the destination differ from what would be written, and ``force`` was not given."""

    def __init__(self, dest: Path, changed: list[str]) -> None:
        self.dest = dest
        self.changed = changed
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        super().__init__(
            f"{len(changed)} file(s) in {dest} differ from the shipped version and were not "
            f"overwritten: {shown}; pass --force to overwrite them"
        )


@dataclass
class ExportResult:
    written: list[str]
    unchanged: list[str]


def write_files(dest: Path, files: dict[str, bytes], *, force: bool = False) -> ExportResult:
    """Write ``files`` (relative path -> content) under ``dest``.

    Nothing is written when any existing file differs and ``force`` is false: a half-updated
    folder is worse than a refused command. Identical files are left untouched, so exporting
    twice is a no-op.
    """
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} exists and is not a directory")
    changed: list[str] = []
    unchanged: list[str] = []
    for rel, content in files.items():
        target = dest / rel
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a directory; cannot write the file {rel} there")
        if target.exists():
            if target.read_bytes() == content:
                unchanged.append(rel)
            else:
                changed.append(rel)
    if changed and not force:
        raise ExportConflict(dest, sorted(changed))
    written: list[str] = []
    for rel, content in files.items():
        if rel in unchanged:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(rel)
    return ExportResult(sorted(written), sorted(unchanged))


def export_assets(kind: str, dest: Path, *, force: bool = False) -> ExportResult:
    """Copy the shipped files of ``kind`` to ``dest``; ``"all"`` puts each kind in a subfolder.

    ``all`` keeps the repository layout (``compose/`` next to ``rules/`` and ``dashboards/``),
    because the compose file mounts ``../rules`` and ``../dashboards``.
    """
    kinds = KINDS if kind == "all" else (check_kind(kind),)
    files: dict[str, bytes] = {}
    for k in kinds:
        prefix = f"{k}/" if kind == "all" else ""
        for item in asset_files(k):
            files[prefix + item.relpath] = item.read_bytes()
    if not files:
        raise AssetError(f"no {kind} assets are shipped in this installation")
    return write_files(dest, files, force=force)
