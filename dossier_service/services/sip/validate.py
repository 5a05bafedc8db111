"""Checking a SIP: the ZIP, its metadata.xml against the shipped schema, every checksum."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from dossier_service.services.sip.schema import (
    CHUNK,
    METADATA_PATH,
    NAMESPACE,
    XSD_FOLDER,
    metadata_errors,
)

#: metadata.xml larger than this is refused by the validator (it is parsed into memory).
MAX_METADATA_BYTES = 256 * 1024 * 1024

_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


def _listed_files(element: etree._Element, prefix: str) -> Iterator[tuple[str, str, str, str]]:
    """(path, id, algorithm, checksum) of every datei below an inhaltsverzeichnis/ordner."""
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        tag = etree.QName(child).localname
        if tag == "ordner":
            name = child.findtext(f"{{{NAMESPACE}}}name") or ""
            yield from _listed_files(child, f"{prefix}{name}/")
        elif tag == "datei":
            name = child.findtext(f"{{{NAMESPACE}}}name") or ""
            yield (
                f"{prefix}{name}",
                child.get("id", ""),
                (child.findtext(f"{{{NAMESPACE}}}pruefalgorithmus") or "").strip(),
                (child.findtext(f"{{{NAMESPACE}}}pruefsumme") or "").strip(),
            )


def _unsafe(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or "\\" in name or any(p in ("..", ".") for p in parts)


def validate_sip(path: Path) -> list[str]:
    """Every problem of the SIP at ``path`` (empty list: valid).

    Checks: a readable ZIP with safe entry names; header/metadata.xml well-formed and valid
    against the shipped arelda v4 schema (not the copy inside the package, which a bad
    package could have loosened); every file the table of contents lists exists and has
    the listed checksum (recomputed while streaming); no file is missing from the table of
    contents; the XSDs are there. Nothing is extracted to disk.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [f"not a readable ZIP file: {exc}"]
    problems: list[str] = []
    with archive:
        members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        for name in members:
            if _unsafe(name):
                problems.append(f"{name}: unsafe path in the ZIP")
        info = members.get(METADATA_PATH)
        if info is None:
            return [*problems, f"{METADATA_PATH} is missing"]
        if info.file_size > MAX_METADATA_BYTES:
            return [*problems, f"{METADATA_PATH} is larger than {MAX_METADATA_BYTES} bytes"]
        try:
            metadata = archive.read(METADATA_PATH)
        except (zipfile.BadZipFile, OSError) as exc:
            return [*problems, f"{METADATA_PATH} cannot be read: {exc}"]
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            root = etree.fromstring(metadata, parser)
        except etree.XMLSyntaxError as exc:
            return [*problems, f"{METADATA_PATH} is not well-formed XML: {exc}"]
        problems += [f"{METADATA_PATH} {e}" for e in metadata_errors(metadata)]
        toc = root.find(f"{{{NAMESPACE}}}inhaltsverzeichnis")
        if toc is None:
            return [*problems, f"{METADATA_PATH} has no inhaltsverzeichnis"]
        listed: set[str] = set()
        for file_path, file_id, algorithm, checksum in _listed_files(toc, ""):
            if file_path in listed:
                problems.append(f"{file_path}: listed twice in the inhaltsverzeichnis")
                continue
            listed.add(file_path)
            if file_path not in members:
                problems.append(f"{file_path}: listed (id {file_id}) but missing from the ZIP")
                continue
            hash_name = _HASHES.get(algorithm)
            if hash_name is None:
                problems.append(f"{file_path}: unknown checksum algorithm {algorithm!r}")
                continue
            digest = hashlib.new(hash_name)
            try:
                with archive.open(members[file_path]) as handle:
                    while chunk := handle.read(CHUNK):
                        digest.update(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                problems.append(f"{file_path}: cannot be read ({exc})")
                continue
            if digest.hexdigest() != checksum.lower():
                problems.append(
                    f"{file_path}: {algorithm} is {digest.hexdigest()}, "
                    f"the inhaltsverzeichnis says {checksum}"
                )
        for name in sorted(set(members) - listed - {METADATA_PATH}):
            problems.append(f"{name}: in the ZIP but not listed in the inhaltsverzeichnis")
        if f"{XSD_FOLDER}/arelda.xsd" not in listed:
            problems.append(f"{XSD_FOLDER}/arelda.xsd is missing")
    return problems
