"""eCH-0160 SIPs: the package of a closed case is valid, complete and checked end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import shutil
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pikepdf
import pytest
from lxml import etree

from dossier_service.models import DOCUMENT_TYPES
from dossier_service.samples import make_pdf
from dossier_service.services import sip
from tests.factories import PDF_V1, closed_case, export_and_download, run_cli

API = "/api/v1"
NS = {"a": sip.NAMESPACE}
#: The official XSDs' checksums and KOST's sample metadata.xml (see tests/data/README.md).
REFERENCE = Path(__file__).resolve().parent / "data" / "ech-0160-1.1"
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau."])


def official_checksums() -> dict[str, str]:
    """SHA-256 of each official eCH-0160 1.1 XSD, by file name."""
    lines = (REFERENCE / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line)}


def assert_vendored_xsds_are_official() -> None:
    """The project's XSDs are the 14 official files, byte for byte."""
    vendored = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sip.XSD_DIR.glob("*.xsd")
    }
    assert vendored == official_checksums() and len(vendored) == 14


def official_schema() -> etree.XMLSchema:
    """The eCH-0160 schema, from the vendored XSDs checked against the official checksums."""
    assert_vendored_xsds_are_official()
    return etree.XMLSchema(etree.parse(str(sip.XSD_DIR / "arelda.xsd")))


def toc_files(root: etree._Element) -> dict[str, etree._Element]:
    """path -> datei element of the inhaltsverzeichnis."""
    files: dict[str, etree._Element] = {}

    def walk(element: etree._Element, prefix: str) -> None:
        for folder in element.findall("a:ordner", NS):
            walk(folder, prefix + folder.findtext("a:name", namespaces=NS) + "/")
        for datei in element.findall("a:datei", NS):
            files[prefix + datei.findtext("a:name", namespaces=NS)] = datei

    walk(root.find("a:inhaltsverzeichnis", NS), "")
    return files


def merkmale(element: etree._Element) -> dict[str, str]:
    return {m.get("name"): m.text or "" for m in element.findall("a:zusatzDaten/a:merkmal", NS)}


# --- The issue's scenario ----------------------------------------------------------------------


def test_exported_sip_of_the_issue_scenario_is_valid_and_complete(client, world, tmp_path):
    case = closed_case(client, world, ahv_number="756.9217.0769.85")
    export_id, data = export_and_download(client, world, [case.id])
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())

    # Layout: header/metadata.xml, header/xsd/ (all 14 XSDs), content/.
    assert "header/metadata.xml" in names
    official = official_checksums()
    shipped = sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("header/xsd/"))
    assert shipped == sorted(official)
    for name in shipped:
        assert hashlib.sha256(archive.read(f"header/xsd/{name}")).hexdigest() == official[name]
    assert all(n.startswith(("header/", "content/")) for n in names)

    # metadata.xml validates against the shared eCH-0160 1.1 XSDs.
    root = etree.fromstring(archive.read("header/metadata.xml"))
    schema = official_schema()
    assert schema.validate(root.getroottree()), schema.error_log
    assert root.get("schemaVersion") == "4.1"
    assert etree.QName(root).namespace == "http://bar.admin.ch/arelda/v4"

    # Every file is listed with a SHA-256 that matches; nothing is unlisted.
    files = toc_files(root)
    assert set(files) == names - {"header/metadata.xml"}
    for path, datei in files.items():
        assert datei.findtext("a:pruefalgorithmus", namespaces=NS) == "SHA-256"
        assert (
            datei.findtext("a:pruefsumme", namespaces=NS)
            == hashlib.sha256(archive.read(path)).hexdigest()
        ), path

    # Every version of every document is there, byte for byte; PDFs also as PDF/A.
    contents = {
        hashlib.sha256(archive.read(p)).hexdigest() for p in files if p.startswith("content/")
    }
    assert set(case.versions) <= contents
    renditions = [p for p in files if p.endswith("-pdfa.pdf")]
    assert len(renditions) == 3  # v1 and v2 of the assessment, the end report
    for path in renditions:
        with pikepdf.open(io.BytesIO(archive.read(path))) as pdf:
            assert pdf.open_metadata().get("pdfaid:part") == "2"
            assert pdf.Root.get("/OutputIntents")

    # One dossier: reference, period from entry to closing, units and facts as merkmal.
    dossiers = root.findall(".//a:dossier", NS)
    assert len(dossiers) == 1
    dossier = dossiers[0]
    assert dossier.findtext("a:aktenzeichen", namespaces=NS) == case.reference
    # The SIP dates days in the canton's zone (Zurich), not the machine's (UTC here).
    today = dt.datetime.now(ZoneInfo("Europe/Zurich")).date().isoformat()
    assert dossier.findtext("a:entstehungszeitraum/a:von/a:datum", namespaces=NS) == case.entry_date
    assert dossier.findtext("a:entstehungszeitraum/a:bis/a:datum", namespaces=NS) == today
    assert dossier.findtext("a:eroeffnungsdatum/a:datum", namespaces=NS) == case.entry_date
    assert dossier.findtext("a:abschlussdatum/a:datum", namespaces=NS) == today
    assert (
        dossier.findtext("a:federfuehrendeOrganisationseinheit", namespaces=NS) == "Gemeinde Aarau"
    )
    facts = merkmale(dossier)
    assert facts["Zuständigkeit 1"].startswith("Kanton Aargau KSD (ag, Kanton) von ")
    assert facts["Zuständigkeit 2"].startswith("Gemeinde Aarau (aarau, Gemeinde) von ")
    assert "bis offen" in facts["Zuständigkeit 2"] and "Wohnsitz Aarau" in facts["Zuständigkeit 2"]
    assert facts["Delegation 1"].startswith(
        "Caritas Aargau (caritas, Organisation) im Auftrag von Gemeinde Aarau (aarau) von "
    )
    assert facts["Zielgruppe"] == "Ausbildungsfähige (16–25) (education)"
    assert facts["Person: Familienname"] == "Haile"
    assert facts["Person: AHV-Nummer"] == "756.9217.0769.85"
    assert (
        facts["Abschlussgrund"] == "nachhaltig im Arbeitsmarkt integriert (integrated_employment)"
    )
    provenance = root.findtext(".//a:provenienz/a:bemerkung", namespaces=NS)
    for unit in ("Kanton Aargau KSD (ag", "Gemeinde Aarau (aarau", "Caritas Aargau (caritas"):
        assert unit in provenance

    # One dokument per document, a dateiRef for each version (and rendition).
    documents = {d.get("id"): d for d in dossier.findall("a:dokument", NS)}
    assert set(documents) == {f"k_{case.pdf_id}", f"k_{case.docx_id}", f"k_{case.end_report_id}"}
    assessment = documents[f"k_{case.pdf_id}"]
    assert assessment.findtext("a:dokumenttyp", namespaces=NS) == DOCUMENT_TYPES["short_assessment"]
    refs = [r.text for r in assessment.findall("a:dateiRef", NS)]
    assert len(refs) == 4  # v1, v1 PDF/A, v2, v2 PDF/A
    by_id = {d.get("id"): p for p, d in files.items()}
    assert [by_id[r].rsplit("/", 1)[1] for r in refs] == [
        "v1.pdf",
        "v1-pdfa.pdf",
        "v2.pdf",
        "v2-pdfa.pdf",
    ]
    assert [a.text for a in assessment.findall("a:autor", NS)] == [
        "Kanton Aargau KSD",
        "Gemeinde Aarau",
    ]
    doc_facts = merkmale(assessment)
    assert doc_facts["Dokumenttyp (Code)"] == "short_assessment"
    assert "durch aarau (Gemeinde Aarau)" in doc_facts["Version 2"]
    plan_refs = [r.text for r in documents[f"k_{case.docx_id}"].findall("a:dateiRef", NS)]
    assert [by_id[r].rsplit("/", 1)[1] for r in plan_refs] == ["v1.docx"]

    # The same package passes the validator (used by the CLI and at the end of each export).
    path = tmp_path / "sip.zip"
    path.write_bytes(data)
    assert sip.validate_sip(path) == []
    body = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["warnings"] == []


def test_vendored_xsds_are_byte_identical_to_the_official_ones():
    assert_vendored_xsds_are_official()


def test_the_kost_sample_validates_and_a_broken_one_does_not():
    sample = (REFERENCE / "sample-metadata-kost.xml").read_bytes()
    assert sip.metadata_errors(sample) == []
    broken = sample.replace(b"<aktenzeichen>22.06.12</aktenzeichen>", b"", 1)
    errors = sip.metadata_errors(broken)
    assert errors and "aktenzeichen" in errors[0]
    assert sip.metadata_errors(b"<paket") and "well-formed" in sip.metadata_errors(b"<paket")[0]


# --- The validator -----------------------------------------------------------------------------


@pytest.fixture
def valid_sip(client, world, tmp_path) -> Path:
    case = closed_case(client, world)
    _, data = export_and_download(client, world, [case.id])
    path = tmp_path / "valid.zip"
    path.write_bytes(data)
    return path


def rewrite(source: Path, target: Path, change: Any) -> Path:
    """Copy a ZIP entry by entry; change(name, data) returns new data, None to drop it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = change(info.filename, old.read(info))
            if data is not None:
                new.writestr(info.filename, data)
    return target


def first_content(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return next(n for n in archive.namelist() if n.endswith("v1.docx"))


def test_validator_reports_an_altered_file(valid_sip, tmp_path):
    victim = first_content(valid_sip)
    bad = rewrite(valid_sip, tmp_path / "bad.zip", lambda n, d: d + b"\0" if n == victim else d)
    problems = sip.validate_sip(bad)
    assert len(problems) == 1
    assert problems[0].startswith(f"{victim}: SHA-256 is ")


def test_validator_reports_missing_and_unlisted_files(valid_sip, tmp_path):
    victim = first_content(valid_sip)

    def change(name: str, data: bytes) -> bytes | None:
        return None if name == victim else data

    bad = rewrite(valid_sip, tmp_path / "bad.zip", change)
    with zipfile.ZipFile(bad, "a") as archive:
        archive.writestr("content/extra.txt", b"not listed")
    problems = sip.validate_sip(bad)
    assert sorted(problems) == sorted(
        [
            f"{victim}: listed (id {_datei_id(valid_sip, victim)}) but missing from the ZIP",
            "content/extra.txt: in the ZIP but not listed in the inhaltsverzeichnis",
        ]
    )


def _datei_id(path: Path, member: str) -> str:
    with zipfile.ZipFile(path) as archive:
        root = etree.fromstring(archive.read("header/metadata.xml"))
    return toc_files(root)[member].get("id")


def test_validator_reports_schema_errors_against_the_shipped_schema(valid_sip, tmp_path):
    def change(name: str, data: bytes) -> bytes:
        if name == "header/metadata.xml":
            return data.replace(b"<aktenzeichen>", b"<aktenzeichenX>").replace(
                b"</aktenzeichen>", b"</aktenzeichenX>"
            )
        return data

    bad = rewrite(valid_sip, tmp_path / "bad.zip", change)
    problems = sip.validate_sip(bad)
    assert problems and all(p.startswith("header/metadata.xml line ") for p in problems)
    assert any("aktenzeichenX" in p for p in problems)


def test_validator_refuses_what_is_not_a_package(tmp_path):
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"PK but not really")
    assert sip.validate_sip(not_zip)[0].startswith("not a readable ZIP file")
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("../evil.txt", b"x")
    assert sip.validate_sip(empty) == [
        "../evil.txt: unsafe path in the ZIP",
        "header/metadata.xml is missing",
    ]


def test_cli_sip_validate_exits_1_with_the_list_of_problems(valid_sip, tmp_path, settings):
    ok = run_cli(settings, "sip", "validate", str(valid_sip))
    assert ok.exit_code == 0, ok.output
    assert "SIP valid" in ok.output
    victim = first_content(valid_sip)
    bad = rewrite(valid_sip, tmp_path / "bad.zip", lambda n, d: b"x" if n == victim else d)
    refused = run_cli(settings, "sip", "validate", str(bad))
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert lines[0].startswith(f"{victim}: SHA-256 is ")
    assert lines[-1] == "SIP INVALID: 1 problem(s)"


# --- Building with bounded memory --------------------------------------------------------------


def _facts(store: Any, size: int, tmp_path: Path) -> sip.PackageFacts:
    """A package of one case with one version of ``size`` random bytes in the store."""
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        for _ in range(size // (1024 * 1024)):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            handle.write(chunk)
    version_id = str(uuid.uuid4())
    key = f"versions/{version_id[:2]}/{version_id}"
    store.put_file(key, source, {})
    now = dt.datetime.now(dt.UTC)
    version = sip.VersionFacts(
        version_id,
        1,
        key,
        digest.hexdigest(),
        size,
        "image/tiff",
        "scan.tif",
        now,
        "aarau",
        "Gemeinde Aarau",
    )
    document = sip.DocumentFacts(str(uuid.uuid4()), "other", "Scan", now, (version,))
    period = sip.UnitPeriod("aarau", "Gemeinde Aarau", "municipality", now, None)
    case = sip.CaseFacts(
        str(uuid.uuid4()),
        "IAS-2026-000009",
        {"family_name": "Muster"},
        dt.date(2025, 3, 1),
        now,
        "other",
        (period,),
        (),
        (),
        (document,),
    )
    return sip.PackageFacts(str(uuid.uuid4()), now, "archivist", "Kanton Aargau KSD", (case,))


def test_building_streams_a_large_version_in_bounded_memory(container, tmp_path):
    size = 48 * 1024 * 1024
    facts = _facts(container.store, size, tmp_path)
    out = tmp_path / "sip.zip"
    progress: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        result = sip.build_sip(
            container.store,
            facts,
            out,
            work_dir=tmp_path,
            progress=lambda f, b: progress.append((f, b)),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Chunks of at most 1 MiB pass through; the whole 48 MiB never sits in memory.
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB"
    assert progress == [(1, size)]
    assert result.content_bytes == size
    assert sip.validate_sip(out) == []


def test_altered_bytes_in_storage_fail_the_build(container, tmp_path):
    facts = _facts(container.store, 1024 * 1024, tmp_path)
    version = facts.cases[0].documents[0].versions[0]
    path = container.settings.storage_root / "objects" / version.storage_key
    os.chmod(path, 0o640)
    with path.open("r+b") as handle:
        handle.write(b"tampered")
    with pytest.raises(sip.SipError, match="does not match the SHA-256"):
        sip.build_sip(container.store, facts, tmp_path / "sip.zip", work_dir=tmp_path)


def test_missing_bytes_fail_the_build(container, tmp_path):
    facts = _facts(container.store, 1024 * 1024, tmp_path)
    container.store.delete(facts.cases[0].documents[0].versions[0].storage_key)
    with pytest.raises(sip.SipError, match="missing from storage"):
        sip.build_sip(container.store, facts, tmp_path / "sip.zip", work_dir=tmp_path)


def test_metadata_text_is_cleaned_of_characters_xml_cannot_hold(container, tmp_path):
    facts = _facts(container.store, 1024 * 1024, tmp_path)
    case = facts.cases[0]
    document = case.documents[0]
    odd = sip.DocumentFacts(
        document.id,
        "other",
        "Scan\x0b mit Steuerzeichen\ufffe",
        document.created_at,
        document.versions,
    )
    facts = sip.PackageFacts(
        facts.export_id,
        facts.created_at,
        facts.created_by,
        facts.delivering_unit,
        (sip.CaseFacts(**{**case.__dict__, "documents": (odd,)}),),
    )
    out = tmp_path / "sip.zip"
    sip.build_sip(container.store, facts, out, work_dir=tmp_path)
    assert sip.validate_sip(out) == []
    with zipfile.ZipFile(out) as archive:
        root = etree.fromstring(archive.read("header/metadata.xml"))
    assert (
        root.findtext(".//a:dokument/a:titel", namespaces=NS)
        == "Scan\ufffd mit Steuerzeichen\ufffd"
    )


# --- PDF/A renditions --------------------------------------------------------------------------


def test_pdfa_converter_produces_a_declared_pdfa2_with_output_intent(tmp_path):
    converter = sip.PdfaConverter.detect()
    assert converter is not None, "Ghostscript must be installed (Makefile DEBIAN_PACKAGES)"
    source = tmp_path / "in.pdf"
    source.write_bytes(PDF_V1)
    assert converter.convert(source, tmp_path / "out.pdf", tmp_path) is None
    with pikepdf.open(tmp_path / "out.pdf") as pdf:
        assert pdf.open_metadata().get("pdfaid:part") == "2"
        assert pdf.Root.OutputIntents[0].S == "/GTS_PDFA1"


def test_pdfa_converter_reports_a_pdf_it_cannot_convert(tmp_path):
    converter = sip.PdfaConverter.detect()
    assert converter is not None
    source = tmp_path / "in.pdf"
    source.write_bytes(b"%PDF-1.4\nthis is no pdf at all\n")
    # Ghostscript exits 0 here and writes a blank page: the page check catches it.
    reason = converter.convert(source, tmp_path / "out.pdf", tmp_path)
    assert reason == "the original cannot be read as PDF (PdfError)"


def test_pdfa_converter_is_stopped_at_its_time_limit(tmp_path):
    slow = tmp_path / "slow-gs"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    converter = sip.PdfaConverter(gs=str(slow), icc=Path("/dev/null"), timeout_s=0.5)
    source = tmp_path / "in.pdf"
    source.write_bytes(PDF_V1)
    started = dt.datetime.now()
    assert converter.convert(source, tmp_path / "out.pdf", tmp_path) == (
        "Ghostscript took longer than 0.5 s"
    )
    assert (dt.datetime.now() - started).total_seconds() < 10


def test_failed_pdfa_conversion_is_recorded_and_the_export_still_succeeds(
    client, world, container, tmp_path
):
    from dossier_service.services import exports

    case = closed_case(client, world)
    failing = sip.PdfaConverter(gs=shutil.which("false") or "/bin/false", icc=Path("/dev/null"))
    from tests.factories import queue_export, quiet_transaction

    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    assert exports.run_export(container, export_id, converter=failing) == "done"
    body = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert body["status"] == "done"
    reasons = [w["reason"] for w in body["warnings"]]
    assert reasons == ["PDF/A conversion failed: Ghostscript failed (exit status 1)"] * 3
    assert {w["case"] for w in body["warnings"]} == {case.reference}
    data = client.get(f"{API}/exports/{export_id}/content", headers=world.auth("archivist")).data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert not [n for n in archive.namelist() if n.endswith("-pdfa.pdf")]
        assert len([n for n in archive.namelist() if n.startswith("content/")]) == 4
