"""Run the worker image's pip install offline: a stub wheelhouse and a borrowed-module view.

The image installs one wheel plus its dependency closure from the package index. Here there is no
index, so:

- ``stub_wheelhouse`` writes one wheel per distribution installed in this test virtualenv, each
  holding only that distribution's real METADATA (its name, version, extras and Requires-Dist).
  pip resolves the real dependency graph against them, extras and markers included.
- ``view_hook`` writes a ``sitecustomize`` for PYTHONPATH: an interpreter of the throw-away prefix
  may then import a module from this virtualenv's site-packages (searched, never put on sys.path)
  only if a distribution that owns it was installed into the prefix. So ``import worker.app``
  in the prefix fails as it would in the image when pip left a dependency out (e.g. an extra it
  did not match).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import re
import sysconfig
import zipfile
from pathlib import Path

DEV_SITE = Path(sysconfig.get_paths()["purelib"])
WHEEL_FILE = "Wheel-Version: 1.0\nGenerator: tests/images/offline_pip.py\nRoot-Is-Purelib: true\n"
WHEEL_FILE += "Tag: py3-none-any\n"


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def stub_wheelhouse(dest: Path, skip: frozenset[str] = frozenset({"ib-cloudrun"})) -> list[Path]:
    """One metadata-only wheel per distribution of this virtualenv (except ``skip``)."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = []
    for dist in md.distributions(path=[str(DEV_SITE)]):
        name, version = dist.metadata["Name"], dist.version
        if canonical(name) in skip:
            continue
        stem = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
        files = {
            f"{stem}.dist-info/METADATA": (dist.read_text("METADATA") or "").encode(),
            f"{stem}.dist-info/WHEEL": WHEEL_FILE.encode(),
        }
        record = [_record_line(path, data) for path, data in files.items()]
        record.append(f"{stem}.dist-info/RECORD,,")
        wheel = dest / f"{stem}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            for path, data in files.items():
                zf.writestr(path, data)
            zf.writestr(f"{stem}.dist-info/RECORD", "\n".join(record) + "\n")
        wheels.append(wheel)
    return wheels


VIEW_HOOK = '''
"""Test hook: borrow modules from {dev!r} only for distributions installed in this prefix."""
import importlib.machinery
import importlib.metadata
import re
import sys
import sysconfig

_DEV = {dev!r}


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _owned_paths():
    site = sysconfig.get_paths()["purelib"]
    dists = importlib.metadata.distributions(path=[site])
    installed = {{_canonical(d.metadata["Name"]) for d in dists}}
    owned = set()
    for dist in importlib.metadata.distributions(path=[_DEV]):
        if _canonical(dist.metadata["Name"]) not in installed:
            continue
        for file in dist.files or ():
            parts = file.parts
            if not parts or parts[0] == ".." or parts[0].endswith(".dist-info"):
                continue
            for depth in range(1, len(parts)):
                owned.add("/".join(parts[:depth]))
            owned.add("/".join((*parts[:-1], parts[-1].split(".", 1)[0])))
    return owned


class _View:
    owned = None

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        # _DEV is searched but never put on sys.path, so pip does not take its distributions
        # for installed ones.
        search = list(path) if path is not None else [*sys.path, _DEV]
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None:
            return None
        places = [spec.origin] if spec.origin else list(spec.submodule_search_locations or ())
        if not places or not all(str(p).startswith(_DEV) for p in places):
            return None
        if cls.owned is None:
            cls.owned = _owned_paths()
        if fullname.replace(".", "/") in cls.owned:
            return spec
        raise ModuleNotFoundError(
            f"No module named {{fullname!r}} (no distribution in {{sys.prefix}} provides it)",
            name=fullname,
        )


if sys.prefix != sys.base_prefix:
    sys.meta_path.insert(0, _View)
'''


def view_hook(dest: Path) -> Path:
    """A directory holding the sitecustomize above; put it on PYTHONPATH."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "sitecustomize.py").write_text(VIEW_HOOK.format(dev=str(DEV_SITE)))
    return dest
