"""Writing a SIP: every version streamed into the ZIP and hashed on the way, then metadata.xml.

Memory: file contents are streamed from object storage into the ZIP in chunks of at most
1 MiB and hashed on the way, never held whole; only metadata.xml is built in memory, and it
grows with the number of files, not with their size. PDFs are spooled to a work directory
for Ghostscript (bounded by disk, not RAM).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dossier_service.dates import local_iso, zip_time
from dossier_service.services.sip.facts import CaseFacts, PackageFacts
from dossier_service.services.sip.metadata import FileEntry, build_metadata
from dossier_service.services.sip.pdfa import PdfaConverter
from dossier_service.services.sip.schema import (
    CHUNK,
    METADATA_PATH,
    XSD_FOLDER,
    SipError,
    metadata_errors,
    xsd_files,
)
from dossier_service.services.snapshot import DocumentFacts, VersionFacts
from storage import ObjectNotFound, ObjectStore

_EXTENSIONS = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "text/plain": "txt",
}


@dataclass
class BuildResult:
    """What a build wrote: every file, and the non-fatal findings (failed PDF/A renditions)."""

    files: list[FileEntry]
    warnings: list[dict[str, Any]]
    content_bytes: int


#: Called after each version file: (version files done, version bytes done).
Progress = Callable[[int, int], None]


def _safe_segment(text: str) -> str:
    """A path segment of ASCII letters, digits, '.', '_' and '-' only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    return cleaned[:100]


def extension(media_type: str, filename: str) -> str:
    """File extension for a version: from its (sniffed) media type, else its name, else bin."""
    known = _EXTENSIONS.get(media_type)
    if known:
        return known
    suffix = Path(filename).suffix.lower().lstrip(".")
    return suffix if re.fullmatch(r"[a-z0-9]{1,8}", suffix) else "bin"


class _Tee:
    """Collects a stream's SHA-256 and size, and optionally copies it to a file."""

    def __init__(self, copy_to: IO[bytes] | None = None) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self.copy_to = copy_to

    def feed(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.size += len(chunk)
        if self.copy_to is not None:
            self.copy_to.write(chunk)


def _write_stream(
    archive: zipfile.ZipFile,
    path: str,
    chunks: Iterable[bytes],
    *,
    expected_size: int,
    when: dt.datetime,
    tee: _Tee,
) -> None:
    """Stream chunks into a stored (uncompressed) ZIP entry, feeding the tee on the way."""
    info = zipfile.ZipInfo(path, date_time=zip_time(when))
    info.compress_type = zipfile.ZIP_STORED
    # zipfile decides on ZIP64 headers from the announced size; a 5 GB version needs them.
    info.file_size = expected_size
    with archive.open(info, "w") as target:
        for chunk in chunks:
            tee.feed(chunk)
            target.write(chunk)


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def build_sip(
    store: ObjectStore,
    facts: PackageFacts,
    out_path: Path,
    *,
    work_dir: Path,
    converter: PdfaConverter | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Write the SIP of ``facts`` to ``out_path``; raise SipError if it cannot be correct.

    Every version's bytes are checked against the SHA-256 and size recorded at upload while
    they are copied; a mismatch or a missing object fails the build. A PDF/A conversion
    that fails is recorded in the result's warnings, the original is delivered regardless.
    """
    files: list[FileEntry] = []
    warnings: list[dict[str, Any]] = []
    if converter is None:
        warnings.append(
            {"reason": "Ghostscript or the sRGB profile is not installed: no PDF/A renditions"}
        )
    files_done = 0
    bytes_done = 0
    by_case: dict[str, dict[str, list[str]]] = {}
    with zipfile.ZipFile(out_path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for case in facts.cases:
            case_folder = f"content/{_safe_segment(case.reference)}"
            doc_files: dict[str, list[str]] = {}
            for index, document in enumerate(case.documents, start=1):
                folder = f"{case_folder}/dokument-{index:04d}"
                ids: list[str] = []
                for version in document.versions:
                    entry, warning = _add_version(
                        store, archive, case, document, version, folder, work_dir, converter
                    )
                    files.extend(entry)
                    ids.extend(e.id for e in entry)
                    if warning is not None:
                        warnings.append(warning)
                    files_done += 1
                    bytes_done += version.size
                    if progress is not None:
                        progress(files_done, bytes_done)
                doc_files[document.id] = ids
            by_case[case.id] = doc_files
        for xsd in xsd_files():
            tee = _Tee()
            size = xsd.stat().st_size
            path = f"{XSD_FOLDER}/{xsd.name}"
            _write_stream(
                archive, path, _read_file(xsd), expected_size=size, when=facts.created_at, tee=tee
            )
            files.append(FileEntry(f"x_{xsd.name}", path, tee.hash.hexdigest(), tee.size))
        metadata = build_metadata(facts, files, by_case, converter)
        errors = metadata_errors(metadata)
        if errors:
            raise SipError("metadata.xml does not validate: " + "; ".join(errors[:5]))
        info = zipfile.ZipInfo(METADATA_PATH, date_time=zip_time(facts.created_at))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, metadata)
    return BuildResult(files=files, warnings=warnings, content_bytes=bytes_done)


def _add_version(
    store: ObjectStore,
    archive: zipfile.ZipFile,
    case: CaseFacts,
    document: DocumentFacts,
    version: VersionFacts,
    folder: str,
    work_dir: Path,
    converter: PdfaConverter | None,
) -> tuple[list[FileEntry], dict[str, Any] | None]:
    """Copy one version (and its PDF/A rendition) into the package."""
    name = f"v{version.number}.{extension(version.media_type, version.filename)}"
    path = f"{folder}/{name}"
    convert = converter is not None and version.media_type == "application/pdf"
    spool = work_dir / f"{version.id}.pdf"
    try:
        stream = store.open(version.storage_key)
    except ObjectNotFound:
        raise SipError(
            f"{case.reference}: version {version.number} of document {document.id} is missing "
            "from storage"
        ) from None
    copy = spool.open("wb") if convert else None
    try:
        tee = _Tee(copy)
        try:
            _write_stream(
                archive, path, stream, expected_size=version.size, when=version.created_at, tee=tee
            )
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if copy is not None:
            copy.close()
        if tee.hash.hexdigest() != version.sha256 or tee.size != version.size:
            raise SipError(
                f"{case.reference}: version {version.number} of document {document.id} does not "
                "match the SHA-256 and size recorded at upload (run 'dossier fsck')"
            )
        entry = FileEntry(
            id=f"f_{version.id}",
            path=path,
            sha256=tee.hash.hexdigest(),
            size=tee.size,
            original_name=version.filename,
            properties=[
                ("Version", str(version.number)),
                ("Medientyp", version.media_type),
                ("Grösse (Bytes)", str(version.size)),
                ("Erfasst am", local_iso(version.created_at)),
                ("Erfasst durch Stelle", version.created_by_unit),
            ],
        )
        if not convert:
            return [entry], None
        assert converter is not None
        target = work_dir / f"{version.id}-pdfa.pdf"
        try:
            reason = converter.convert(spool, target, work_dir)
            if reason is not None:
                return [entry], {
                    "case": case.reference,
                    "document_id": document.id,
                    "version": version.number,
                    "reason": f"PDF/A conversion failed: {reason}",
                }
            rendition_tee = _Tee()
            rendition_path = f"{folder}/v{version.number}-pdfa.pdf"
            _write_stream(
                archive,
                rendition_path,
                _read_file(target),
                expected_size=target.stat().st_size,
                when=version.created_at,
                tee=rendition_tee,
            )
        finally:
            target.unlink(missing_ok=True)
        rendition = FileEntry(
            id=f"f_{version.id}_pdfa",
            path=rendition_path,
            sha256=rendition_tee.hash.hexdigest(),
            size=rendition_tee.size,
            properties=[
                ("Version", str(version.number)),
                ("Medientyp", "application/pdf"),
                ("Format", "PDF/A-2b"),
                ("Rendition von", entry.id),
                ("Erzeugt mit", converter.describe()),
            ],
        )
        return [entry, rendition], None
    finally:
        if copy is not None and not copy.closed:
            copy.close()
        spool.unlink(missing_ok=True)
