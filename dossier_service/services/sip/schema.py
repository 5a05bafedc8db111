"""The eCH-0160 1.1 (arelda v4) format: names, paths in the package, and the shipped schema."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from lxml import etree

NAMESPACE = "http://bar.admin.ch/arelda/v4"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_VERSION = "4.1"
#: The eCH-0160 1.1 schemas shipped with the package (copied from KOST, unchanged).
XSD_DIR = Path(__file__).resolve().parents[2] / "xsd" / "ech-0160-1.1"
METADATA_PATH = "header/metadata.xml"
XSD_FOLDER = "header/xsd"
#: Files are streamed in chunks of at most this many bytes.
CHUNK = 1024 * 1024


class SipError(Exception):
    """The package cannot be built correctly (missing or altered content, invalid metadata)."""


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
