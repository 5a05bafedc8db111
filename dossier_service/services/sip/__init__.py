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
all its versions.

The parts: ``facts`` (what the export service hands over; no database here), ``schema``
(the format and its XSD), ``metadata`` (metadata.xml), ``pdfa`` (PDF/A renditions through
Ghostscript in the sandbox), ``package`` (the ZIP writer) and ``validate`` (the checker).
"""

from dossier_service.services.sip.facts import CaseFacts, JournalFact, PackageFacts
from dossier_service.services.sip.package import build_sip
from dossier_service.services.sip.pdfa import PdfaConverter
from dossier_service.services.sip.schema import (
    CHUNK,
    NAMESPACE,
    XSD_DIR,
    SipError,
    metadata_errors,
    sip_schema,
)
from dossier_service.services.sip.validate import validate_sip
from dossier_service.services.snapshot import DocumentFacts, GroupPeriod, UnitPeriod, VersionFacts

__all__ = [
    "CHUNK",
    "NAMESPACE",
    "XSD_DIR",
    "CaseFacts",
    "DocumentFacts",
    "GroupPeriod",
    "JournalFact",
    "PackageFacts",
    "PdfaConverter",
    "SipError",
    "UnitPeriod",
    "VersionFacts",
    "build_sip",
    "metadata_errors",
    "sip_schema",
    "validate_sip",
]
