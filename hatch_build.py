"""Wheel build hook: ship the asset folders as package data, never what a user added locally.

``force-include`` copies a folder whole, ignoring ``.gitignore``, so a maintainer's
``compose/.env``, Alertmanager secrets or discovery files would end up in the published wheel.
This hook includes the same folders file by file and leaves those out.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

#: Repository folder -> folder under tta_observability/_assets in the wheel.
ASSETS = {
    "rules": "rules",
    "dashboards": "dashboards",
    "compose": "compose",
    "docs/runbooks": "runbooks",
}
#: Files kept inside a ``secrets`` folder: the instructions, never the secrets.
KEPT_IN_SECRETS = frozenset({"README.md", ".gitignore"})
#: Files kept in the discovery folder, which apps fill at run time.
KEPT_IN_FILE_SD = frozenset({"README.md", ".gitignore"})


def shipped(relative: PurePosixPath) -> bool:
    """Whether an asset file (path relative to its asset folder) belongs in the wheel."""
    name = relative.name
    if name == ".env" or (name.endswith(".env") and not name.endswith(".env.example")):
        return False
    if "__pycache__" in relative.parts or name.endswith((".pyc", ".tmp")):
        return False
    if "secrets" in relative.parts[:-1]:
        return name in KEPT_IN_SECRETS
    if "file_sd" in relative.parts[:-1]:
        return name in KEPT_IN_FILE_SD
    return True


class AssetsBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # an editable install finds the assets in the source tree
        root = Path(self.root)
        for source, dest in ASSETS.items():
            folder = root / source
            for path in sorted(folder.rglob("*")):
                relative = PurePosixPath(path.relative_to(folder).as_posix())
                if path.is_file() and shipped(relative):
                    build_data["force_include"][str(path)] = (
                        f"tta_observability/_assets/{dest}/{relative}"
                    )
