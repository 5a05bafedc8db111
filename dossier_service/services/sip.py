"""eCH-0160 SIPs (Submission Information Packages): build one, and validate one.

Layout of a package (a ZIP, ZIP64 when large)::

    header/metadata.xml            arelda v4 paketSIP, schemaVersion 4.1
    header/xsd/*.xsd               the eCH-0160 1.1 schemas, byte-identical to the shipped ones
    content/<reference>/dokument-NNNN/vN.<ext>         every version of every document
    content/<reference>/dokument-NNNN/vN-pdfa.pdf      PDF/A-2b rendition of a PDF version

The table of contents (``inhaltsverzeichnis``) mirrors these folders and gives the SHA-256
of every file, the XSDs included; metadata.xml itself is the one file it does not list (as
in the KOST sample). One ``dossier`` per case carries the case reference as ``aktenzeichen``
and the period from entry to closing; one ``dokument`` per document refers to the files of
all its versions. Domain facts that eCH-0160 has no element for (person, responsibility
periods, delegations, target groups, document types, the uploading units) go into
``zusatzDaten/merkmal``.

Memory: file contents are streamed from object storage into the ZIP in chunks of at most
1 MiB and hashed on the way, never held whole; only metadata.xml is built in memory, and it
grows with the number of files, not with their size. PDFs are spooled to a work directory
for Ghostscript (bounded by disk, not RAM).

This module knows no database: the export service hands it a snapshot (``PackageFacts``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lxml import etree

from dossier_service.dates import LOCAL_ZONE
from dossier_service.models import DOCUMENT_TYPES
from dossier_service.models.process import CLOSE_REASONS, TARGET_GROUPS
from storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)

NAMESPACE = "http://bar.admin.ch/arelda/v4"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_VERSION = "4.1"
#: The eCH-0160 1.1 schemas shipped with the package (copied from KOST, unchanged).
XSD_DIR = Path(__file__).resolve().parent.parent / "xsd" / "ech-0160-1.1"
METADATA_PATH = "header/metadata.xml"
XSD_FOLDER = "header/xsd"
CHUNK = 1024 * 1024
SYSTEM_NAME = "IAS-Dossierdienst"
#: metadata.xml larger than this is refused by the validator (it is parsed into memory).
MAX_METADATA_BYTES = 256 * 1024 * 1024

_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}
_RESIDENCE = {
    "N": "N (Asylsuchende)",
    "F": "F (vorläufig aufgenommen)",
    "B": "B (anerkannter Flüchtling)",
}
_SEX = {"female": "weiblich", "male": "männlich", "unknown": "unbekannt"}
_UNIT_KIND = {"canton": "Kanton", "municipality": "Gemeinde", "organisation": "Organisation"}
_EXTENSIONS = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "text/plain": "txt",
}
# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except surrogates
# and U+FFFE/U+FFFF; lxml refuses the rest, so text from the database is cleaned first.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class SipError(Exception):
    """The package cannot be built correctly (missing or altered content, invalid metadata)."""


# --- The snapshot the export service hands over ---------------------------------------------


@dataclass(frozen=True)
class UnitPeriod:
    """A dated period of a unit: a responsibility, or a delegation (with who granted it)."""

    unit_code: str
    unit_name: str
    unit_kind: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str = ""
    granted_by: str | None = None


@dataclass(frozen=True)
class GroupPeriod:
    """A dated period in which the case belonged to a target group."""

    group: str
    start: dt.datetime
    end: dt.datetime | None


@dataclass(frozen=True)
class VersionFacts:
    """One immutable version and where its bytes are."""

    id: str
    number: int
    storage_key: str
    sha256: str
    size: int
    media_type: str
    filename: str
    created_at: dt.datetime
    created_by: str
    created_by_unit: str


@dataclass(frozen=True)
class DocumentFacts:
    """A document of the dossier with all its versions (oldest first)."""

    id: str
    type: str
    title: str
    created_at: dt.datetime
    versions: tuple[VersionFacts, ...]


@dataclass(frozen=True)
class CaseFacts:
    """Everything the SIP says about one case."""

    id: str
    reference: str
    person: dict[str, str | None]
    entry_date: dt.date
    closed_at: dt.datetime
    close_reason: str
    responsibilities: tuple[UnitPeriod, ...]
    delegations: tuple[UnitPeriod, ...]
    target_groups: tuple[GroupPeriod, ...]
    documents: tuple[DocumentFacts, ...]


@dataclass(frozen=True)
class PackageFacts:
    """One delivery: who delivers, when, and the cases."""

    export_id: str
    created_at: dt.datetime
    created_by: str
    delivering_unit: str
    cases: tuple[CaseFacts, ...]


# --- Files of the package -----------------------------------------------------------------------


@dataclass
class FileEntry:
    """One file written into the package, as the table of contents lists it."""

    id: str
    path: str
    sha256: str
    size: int
    original_name: str | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class BuildResult:
    """What a build wrote: every file, and the non-fatal findings (failed PDF/A renditions)."""

    files: list[FileEntry]
    warnings: list[dict[str, Any]]
    content_bytes: int


#: Called after each version file: (version files done, version bytes done).
Progress = Callable[[int, int], None]


def _local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(LOCAL_ZONE)


def _day(moment: dt.datetime) -> str:
    return _local(moment).date().isoformat()


def _zip_time(moment: dt.datetime) -> tuple[int, int, int, int, int, int]:
    local = _local(moment)
    if local.year < 1980:  # the ZIP format cannot express earlier times
        return (1980, 1, 1, 0, 0, 0)
    return (local.year, local.month, local.day, local.hour, local.minute, local.second)


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


def xsd_files() -> list[Path]:
    """The shipped XSDs, sorted by name."""
    files = sorted(XSD_DIR.glob("*.xsd"))
    if not any(f.name == "arelda.xsd" for f in files):
        raise SipError(f"the eCH-0160 schemas are missing from {XSD_DIR}")
    return files


# A schema's error_log belongs to its last validation: one validation at a time per process.
_SCHEMA_LOCK = threading.Lock()


@functools.cache
def sip_schema() -> etree.XMLSchema:
    """The arelda v4 schema (eCH-0160 1.1), parsed once per process."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(XSD_DIR / "arelda.xsd"), parser))


# --- PDF/A renditions -------------------------------------------------------------------------

_PDFA_DEF = """%!
% Written by the dossier service: attach the sRGB output intent PDF/A requires.
/ICCProfile ({icc}) def
[/_objdef {{icc_PDFA}} /type /stream /OBJ pdfmark
[{{icc_PDFA}} << /N 3 >> /PUT pdfmark
[{{icc_PDFA}} ICCProfile (r) file /PUT pdfmark
[/_objdef {{OutputIntent_PDFA}} /type /dict /OBJ pdfmark
[{{OutputIntent_PDFA}} << /Type /OutputIntent /S /GTS_PDFA1
  /DestOutputProfile {{icc_PDFA}} /OutputConditionIdentifier (sRGB) >> /PUT pdfmark
[{{Catalog}} << /OutputIntents [ {{OutputIntent_PDFA}} ] >> /PUT pdfmark
"""
_ICC_CANDIDATES = (
    Path("/usr/share/color/icc/ghostscript/srgb.icc"),
    Path("/usr/share/color/icc/sRGB.icc"),
)


@dataclass(frozen=True)
class PdfaConverter:
    """Ghostscript (``-dPDFA=2``) turning a PDF into PDF/A-2b, under time and memory limits.

    The input is untrusted: Ghostscript runs with -dSAFER (it may read only the files named
    and the colour profile), in its own session so a timeout kills it and anything it
    started, with an address-space and CPU limit and an environment without secrets.
    PDFACompatibilityPolicy=2 makes Ghostscript fail instead of silently writing a plain PDF
    when it cannot conform; the output is then checked to declare PDF/A-2 with an output
    intent. This is no full conformance check (that needs veraPDF).
    """

    gs: str
    icc: Path
    timeout_s: float = 300.0
    memory_mb: int = 2048
    max_input_bytes: int = 500 * 1024 * 1024

    @classmethod
    def detect(cls, timeout_s: float = 300.0) -> PdfaConverter | None:
        """A converter if Ghostscript and an sRGB profile are installed, else None."""
        gs = shutil.which("gs")
        icc = next((p for p in _ICC_CANDIDATES if p.is_file()), None)
        if gs is None or icc is None:
            return None
        return cls(gs=gs, icc=icc, timeout_s=timeout_s)

    def describe(self) -> str:
        """Tool and profile, for the package's metadata."""
        return f"Ghostscript ({self.gs}) -dPDFA=2, Profil {self.icc.name}"

    def _limits(self) -> None:  # runs in the child before exec
        memory = self.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(self.timeout_s) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def convert(self, source: Path, target: Path, work_dir: Path) -> str | None:
        """Write the PDF/A rendition of ``source`` to ``target``; None on success, else why not."""
        if source.stat().st_size > self.max_input_bytes:
            return f"larger than {self.max_input_bytes // (1024 * 1024)} MiB; not converted"
        definition = work_dir / "pdfa_def.ps"
        if not definition.exists():
            definition.write_text(_PDFA_DEF.format(icc=str(self.icc)), encoding="ascii")
        command = [
            self.gs,
            "-dPDFA=2",
            "-dBATCH",
            "-dNOPAUSE",
            "-dSAFER",
            "-dQUIET",
            "-dNOOUTERSAVE",
            f"--permit-file-read={self.icc.parent}/",
            "-sColorConversionStrategy=RGB",
            "-dPDFACompatibilityPolicy=2",
            "-sDEVICE=pdfwrite",
            f"-sOutputFile={target}",
            str(definition),
            str(source),
        ]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work_dir), "TMPDIR": str(work_dir)}
        try:
            process = subprocess.Popen(  # noqa: S603 - absolute tool path, fixed arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                cwd=work_dir,
                start_new_session=True,
                # preexec_fn is unsafe only with threads forking concurrently; the worker
                # builds one export per process.
                preexec_fn=self._limits,
            )
        except OSError as exc:
            return f"Ghostscript could not be started ({exc.strerror})"
        try:
            _, stderr = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return f"Ghostscript took longer than {self.timeout_s:g} s"
        finally:
            _kill_group(process)
        if process.returncode != 0:
            tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            return f"Ghostscript failed (exit status {process.returncode}) {tail[0][:200]}".strip()
        return _check_pdfa(target, source)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole session (Ghostscript and anything it started); reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - the kernel reaps a killed child
        log.error("Ghostscript %s did not exit after SIGKILL", process.pid)


def _check_pdfa(path: Path, source: Path) -> str | None:
    """None if the rendition declares PDF/A-2 with an output intent and has every page of
    the original, else why not (Ghostscript "repairs" garbage into a blank page)."""
    import pikepdf

    if not path.is_file() or path.stat().st_size == 0:
        return "Ghostscript wrote no output"
    try:
        with pikepdf.open(source) as original:
            pages = len(original.pages)
    except Exception as exc:  # the original is damaged: a rendition could not be faithful
        return f"the original cannot be read as PDF ({type(exc).__name__})"
    try:
        with pikepdf.open(path) as pdf:
            part = pdf.open_metadata().get("pdfaid:part")
            intents = pdf.Root.get("/OutputIntents")
            rendered = len(pdf.pages)
    except Exception as exc:  # any parse failure means: no usable rendition
        return f"the rendition cannot be read ({type(exc).__name__})"
    if rendered != pages:
        return f"the rendition has {rendered} page(s), the original {pages}"
    if part != "2":
        return "the rendition does not declare PDF/A-2"
    if not intents:
        return "the rendition has no output intent"
    return None


# --- Building ---------------------------------------------------------------------------------


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
    info = zipfile.ZipInfo(path, date_time=_zip_time(when))
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
        info = zipfile.ZipInfo(METADATA_PATH, date_time=_zip_time(facts.created_at))
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
                ("Erfasst am", _local(version.created_at).isoformat(timespec="seconds")),
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


# --- metadata.xml ---------------------------------------------------------------------------


def _clean(text: object, limit: int | None = None) -> str:
    """Text fit for XML 1.0, cut to the schema's length limit."""
    value = _XML_INVALID.sub("\ufffd", str(text))
    return value[:limit] if limit is not None else value


def _el(parent: etree._Element, tag: str, text: object = None, **attrib: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attrib)
    if text is not None:
        element.text = _clean(text)
    return element


def _period(parent: etree._Element, tag: str, start: str, end: str) -> None:
    span = _el(parent, tag)
    _el(_el(span, "von"), "datum", start)
    _el(_el(span, "bis"), "datum", end)


def _moment(parent: etree._Element, tag: str, day: str) -> None:
    _el(_el(parent, tag), "datum", day)


def _features(parent: etree._Element, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    block = _el(parent, "zusatzDaten")
    for name, value in pairs:
        _el(block, "merkmal", value, name=_clean(name))


def _unit_label(period: UnitPeriod) -> str:
    kind = _UNIT_KIND.get(period.unit_kind, period.unit_kind)
    return f"{period.unit_name} ({period.unit_code}, {kind})"


def _span(start: dt.datetime, end: dt.datetime | None) -> str:
    until = _local(end).isoformat(timespec="seconds") if end else "offen"
    return f"von {_local(start).isoformat(timespec='seconds')} bis {until}"


def _case_features(case: CaseFacts) -> list[tuple[str, str]]:
    person = case.person
    pairs: list[tuple[str, str]] = [
        ("Person: Familienname", person.get("family_name") or ""),
        ("Person: Vornamen", person.get("given_names") or ""),
        ("Person: Geburtsdatum (eCH-0044)", person.get("birth_date") or ""),
        ("Person: Geschlecht", _SEX.get(person.get("sex") or "", person.get("sex") or "")),
        ("Person: Staatsangehörigkeit (ISO 3166)", person.get("nationality") or ""),
        ("Person: ZEMIS-Nummer", person.get("zemis_number") or ""),
    ]
    if person.get("ahv_number"):
        pairs.append(("Person: AHV-Nummer", person["ahv_number"] or ""))
    status = person.get("residence_status") or ""
    pairs += [
        ("Person: Aufenthaltsstatus", _RESIDENCE.get(status, status)),
        ("Einreisedatum", case.entry_date.isoformat()),
        (
            "Abschlussgrund",
            f"{CLOSE_REASONS.get(case.close_reason, case.close_reason)} ({case.close_reason})",
        ),
    ]
    if case.target_groups:
        last = case.target_groups[-1]
        pairs.append(("Zielgruppe", f"{TARGET_GROUPS.get(last.group, last.group)} ({last.group})"))
    for number, group in enumerate(case.target_groups, start=1):
        label = TARGET_GROUPS.get(group.group, group.group)
        pairs.append(
            (f"Zielgruppe {number}", f"{label} ({group.group}) {_span(group.start, group.end)}")
        )
    for number, period in enumerate(case.responsibilities, start=1):
        reason = f"; Grund: {period.reason}" if period.reason else ""
        pairs.append(
            (
                f"Zuständigkeit {number}",
                f"{_unit_label(period)} {_span(period.start, period.end)}{reason}",
            )
        )
    for number, period in enumerate(case.delegations, start=1):
        by = f" im Auftrag von {period.granted_by}" if period.granted_by else ""
        pairs.append(
            (f"Delegation {number}", f"{_unit_label(period)}{by} {_span(period.start, period.end)}")
        )
    return pairs


def _document_features(document: DocumentFacts) -> list[tuple[str, str]]:
    pairs = [("Dokumenttyp (Code)", document.type)]
    for version in document.versions:
        pairs.append(
            (
                f"Version {version.number}",
                f"erfasst {_local(version.created_at).isoformat(timespec='seconds')} durch "
                f"{version.created_by} ({version.created_by_unit}); Datei {version.filename}; "
                f"{version.media_type}; {version.size} Bytes; SHA-256 {version.sha256}",
            )
        )
    return pairs


def _toc(parent: etree._Element, files: list[FileEntry]) -> None:
    """The inhaltsverzeichnis: nested ordner elements mirroring the paths, then datei."""
    tree: dict[str, Any] = {}
    for entry in files:
        *folders, _name = entry.path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node.setdefault("", []).append(entry)

    def emit(element: etree._Element, node: dict[str, Any]) -> None:
        # Schema order inside an ordner: name, originalName, ordner*, datei*.
        for name in sorted(k for k in node if k):
            folder = _el(element, "ordner")
            _el(folder, "name", name)
            _el(folder, "originalName", name)
            emit(folder, node[name])
        for entry in node.get("", []):
            datei = _el(element, "datei", id=entry.id)
            _el(datei, "name", entry.path.rsplit("/", 1)[1])
            _el(datei, "originalName", entry.original_name or entry.path.rsplit("/", 1)[1])
            _el(datei, "pruefalgorithmus", "SHA-256")
            _el(datei, "pruefsumme", entry.sha256)
            for name, value in entry.properties:
                _el(datei, "eigenschaft", value, name=_clean(name))

    emit(parent, tree)


def build_metadata(
    facts: PackageFacts,
    files: list[FileEntry],
    file_ids: dict[str, dict[str, list[str]]],
    converter: PdfaConverter | None = None,
) -> bytes:
    """metadata.xml of the package (UTF-8), in the element order the arelda v4 schema wants."""
    nsmap = {None: NAMESPACE, "xsi": XSI}
    root = etree.Element(f"{{{NAMESPACE}}}paket", nsmap=nsmap)
    root.set(f"{{{XSI}}}schemaLocation", f"{NAMESPACE} xsd/arelda.xsd")
    root.set(f"{{{XSI}}}type", "paketSIP")
    root.set("schemaVersion", SCHEMA_VERSION)
    _el(root, "paketTyp", "SIP")
    _toc(_el(root, "inhaltsverzeichnis"), files)

    delivery = _el(root, "ablieferung")
    delivery.set(f"{{{XSI}}}type", "ablieferungGeverSIP")
    _el(delivery, "ablieferungstyp", "GEVER")
    _el(delivery, "ablieferndeStelle", _clean(facts.delivering_unit, 200))
    starts = [c.entry_date.isoformat() for c in facts.cases]
    ends = [_day(c.closed_at) for c in facts.cases]
    _period(delivery, "entstehungszeitraum", min(starts), max(ends))
    rendition = converter.describe() if converter else "keine (Ghostscript nicht installiert)"
    _el(
        delivery,
        "bemerkung",
        f"Erstellt am {_local(facts.created_at).isoformat(timespec='seconds')} durch "
        f"{facts.created_by}. Prüfsummen SHA-256. Jede Version jedes Dokuments ist enthalten; "
        f"PDF/A-2b-Renditionen von PDF-Versionen, wo die Konvertierung gelang: {rendition}.",
    )
    _el(delivery, "ablieferungsnummer", _clean(facts.export_id, 100))

    units: dict[str, str] = {}
    for case in facts.cases:
        for period in (*case.responsibilities, *case.delegations):
            units.setdefault(period.unit_code, _unit_label(period))
    provenance = _el(delivery, "provenienz")
    _el(provenance, "aktenbildnerName", _clean(facts.delivering_unit, 200))
    _el(provenance, "systemName", SYSTEM_NAME)
    _el(
        provenance,
        "systemBeschreibung",
        "Elektronische Falldossiers der durchgehenden Fallführung der Integrationsagenda "
        "Schweiz (IAS): Kanton, Gemeinden und beauftragte Organisationen führen ein Dossier "
        "je Person; jede Zuständigkeit ist datiert (siehe zusatzDaten der Dossiers).",
    )
    _el(
        provenance,
        "bemerkung",
        "Zuständige oder beauftragte Stellen in dieser Ablieferung: " + "; ".join(units.values()),
    )
    _el(provenance, "registratur", "IAS-Fallführung")

    system = _el(delivery, "ordnungssystem")
    _el(system, "name", _clean(f"Ordnungssystem {SYSTEM_NAME}", 200))
    position = _el(system, "ordnungssystemposition", id="p_ias")
    _el(position, "nummer", "1")
    _el(position, "titel", "Durchgehende Fallführung Integrationsagenda (VA/FL)")
    for case in facts.cases:
        _dossier(position, case, file_ids.get(case.id, {}))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _dossier(parent: etree._Element, case: CaseFacts, file_ids: dict[str, list[str]]) -> None:
    dossier = _el(parent, "dossier", id=f"d_{case.id}")
    person = case.person
    _el(
        dossier,
        "titel",
        f"Fallführung {case.reference}: {person.get('family_name')}, {person.get('given_names')}",
    )
    _el(dossier, "erscheinungsform", "digital")
    if case.responsibilities:
        _el(
            dossier,
            "federfuehrendeOrganisationseinheit",
            _clean(case.responsibilities[-1].unit_name, 200),
        )
    _period(dossier, "entstehungszeitraum", case.entry_date.isoformat(), _day(case.closed_at))
    _el(dossier, "datenschutz", "true")
    _el(dossier, "oeffentlichkeitsstatus", "nicht öffentlich")
    _features(dossier, _case_features(case))
    _el(dossier, "aktenzeichen", _clean(case.reference, 200))
    _moment(dossier, "eroeffnungsdatum", case.entry_date.isoformat())
    _moment(dossier, "abschlussdatum", _day(case.closed_at))
    for document in case.documents:
        item = _el(dossier, "dokument", id=f"k_{document.id}")
        _el(item, "titel", document.title)
        authors = dict.fromkeys(v.created_by_unit for v in document.versions)
        for author in authors:
            _el(item, "autor", author)
        _el(item, "erscheinungsform", "digital")
        _el(item, "dokumenttyp", _clean(DOCUMENT_TYPES.get(document.type, document.type), 1000))
        _moment(item, "registrierdatum", _day(document.created_at))
        if document.versions:
            _period(
                item,
                "entstehungszeitraum",
                _day(document.versions[0].created_at),
                _day(document.versions[-1].created_at),
            )
        _el(item, "datenschutz", "true")
        _el(item, "oeffentlichkeitsstatus", "nicht öffentlich")
        _features(item, _document_features(document))
        for file_id in file_ids.get(document.id, []):
            _el(item, "dateiRef", file_id)


def metadata_errors(metadata: bytes) -> list[str]:
    """Schema errors of a metadata.xml (empty: valid against the arelda v4 XSD)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        document = etree.fromstring(metadata, parser).getroottree()
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = sip_schema()
    with _SCHEMA_LOCK:
        if schema.validate(document):
            return []
        return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:20]]


# --- Validation of a package -----------------------------------------------------------------


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
