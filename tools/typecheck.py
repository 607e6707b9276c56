"""Run mypy on the darkstack package as it is installed, from the source folders.

The stages live at the repository root (``ingest/``, ``train/``, ...) and are mapped to
``darkstack.<stage>`` by setuptools' package-dir, which mypy cannot follow; an editable
install's import hook is invisible to it too. So this builds the installed layout as a tree of
symlinks in a temporary folder and checks that.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    with tempfile.TemporaryDirectory(prefix="darkstack-mypy-") as tmp:
        for package, folder in mapping.items():
            target = Path(tmp, *package.split("."))
            target.mkdir(parents=True, exist_ok=True)
            for source in (ROOT / folder).iterdir():
                # Subpackages (darkstack.train.models, ...) sit inside their stage's folder.
                if source.suffix in {".py", ".typed"} or (source / "__init__.py").exists():
                    (target / source.name).symlink_to(source)
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "-p",
            "darkstack",
        ]
        return subprocess.call(command, cwd=tmp, env={"MYPYPATH": tmp, "PATH": ""})


if __name__ == "__main__":
    sys.exit(main())
