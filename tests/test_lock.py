"""The lock files agree with pyproject.toml, and this environment was installed from them."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DEV_LOCK = ROOT / "requirements-dev.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
FIX = "run 'make lock' and commit requirements-*.lock"
PROJECT = "dossier-service (pyproject.toml)"


@dataclass
class Pin:
    """One `name==version` entry of a lock file, with its hashes and where it comes from."""

    version: str
    marker: str | None
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, Pin]:
    """Parse a `uv pip compile --generate-hashes` file: canonical name -> pin."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text().splitlines():
        entry = re.match(r"^([A-Za-z0-9_.\-\[\],]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", line)
        if entry:
            name = canonicalize_name(entry.group(1).split("[")[0])
            current = pins[name] = Pin(entry.group(2), entry.group(3))
            in_via = False
            continue
        stripped = line.strip()
        if current is None:
            continue
        if stripped.startswith("--hash="):
            current.hashes.append(stripped.removeprefix("--hash=").rstrip(" \\"))
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.add(rest)
        elif in_via and stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#").strip())
        else:
            in_via = False
    return pins


def pyproject() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def runtime_requirements() -> list[Requirement]:
    """What the service needs to run, and what builds it."""
    data = pyproject()
    return [Requirement(r) for r in data["project"]["dependencies"]] + [
        Requirement(r) for r in data["build-system"]["requires"]
    ]


def dev_requirements() -> list[Requirement]:
    """Everything `make install` installs: runtime, build and the dev extra."""
    extra = pyproject()["project"]["optional-dependencies"]["dev"]
    return runtime_requirements() + [Requirement(r) for r in extra]


def unsatisfied(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """Requirements the lock has no pin for, or pins outside the requirement's range."""
    problems = []
    for requirement in requirements:
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement}: not in the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement}: the lock pins {pin.version}")
    return problems


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [(DEV_LOCK, dev_requirements), (RUNTIME_LOCK, runtime_requirements)],
    ids=["dev", "runtime"],
)
def test_every_requirement_of_pyproject_is_pinned_within_its_range(lock, requirements):
    assert unsatisfied(requirements(), read_lock(lock)) == [], FIX


def test_the_lock_holds_no_direct_dependency_pyproject_dropped():
    declared = {canonicalize_name(r.name) for r in dev_requirements()}
    for lock in (DEV_LOCK, RUNTIME_LOCK):
        stale = [
            name
            for name, pin in read_lock(lock).items()
            if pin.via and pin.via <= {PROJECT, "-c requirements-dev.lock"} and name not in declared
        ]
        assert stale == [], f"{lock.name} pins {stale} that pyproject.toml no longer names: {FIX}"


def test_every_pin_has_hashes_and_the_image_runs_the_tested_versions():
    dev, runtime = read_lock(DEV_LOCK), read_lock(RUNTIME_LOCK)
    assert len(dev) > 100 and len(runtime) > 40
    for pins in (dev, runtime):
        assert [name for name, pin in pins.items() if not pin.hashes] == []
        assert all(h.startswith("sha256:") for pin in pins.values() for h in pin.hashes)
    different = {
        n: (p.version, dev[n].version)
        for n, p in runtime.items()
        if n not in dev or dev[n].version != p.version
    }
    assert different == {}, "runtime.lock must be constrained by dev.lock: " + FIX


def test_this_environment_was_installed_from_the_dev_lock():
    """`make install` installs exactly the pins: a version pip chose by itself shows here."""
    off = {}
    for name, pin in read_lock(DEV_LOCK).items():
        marker = Requirement(f"{name}; {pin.marker}").marker if pin.marker else None
        if marker is not None and not marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            off[name] = (installed, pin.version)
    assert off == {}, "installed != locked; run 'make install'"


def test_the_lock_parser_reads_markers_hashes_and_sources(tmp_path):
    lock = tmp_path / "x.lock"
    lock.write_text(
        "# header\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via\n"
        "    #   click\n"
        f"    #   {PROJECT}\n"
        "Flask_Babel==4.0.0 \\\n"
        "    --hash=sha256:cc\n"
        f"    # via {PROJECT}\n"
    )
    pins = read_lock(lock)
    assert pins["colorama"].marker == "sys_platform == 'win32'"
    assert pins["colorama"].hashes == ["sha256:aa", "sha256:bb"]
    assert pins["colorama"].via == {"click", PROJECT}
    assert pins["flask-babel"].version == "4.0.0" and pins["flask-babel"].via == {PROJECT}
    assert unsatisfied([Requirement("flask-babel>=5")], pins) == [
        "flask-babel>=5: the lock pins 4.0.0"
    ]
    assert unsatisfied([Requirement("lxml")], pins) == ["lxml: not in the lock"]
