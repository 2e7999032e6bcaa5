"""tox's in-tree plugin: let tox find every Python that pyenv has installed, without selecting any of them.

pyenv's shims refuse to run a version that is installed but not selected (`python3.12: command not found`), so
`tox -e py312` failed on a machine that has 3.12 under ~/.pyenv. Appending each installed version's bin folder to
PATH (at the end: `python3` stays whatever the user selected) makes `tox -e py311,py312` work as the README says,
with no setup step; on a machine without pyenv this does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from tox.config.cli.parser import ToxParser
from tox.plugin import impl


@impl
def tox_add_option(parser: ToxParser) -> None:  # the earliest hook: runs before any interpreter is looked up
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    bins = sorted(str(p) for p in root.glob("versions/3.*/bin") if p.is_dir())
    if bins:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *bins])
