"""PDF/A-2b renditions of PDF versions, made by Ghostscript inside the sandbox.

The PDF is untrusted: Ghostscript and the check of its output run in a child of
:mod:`dossier_service.sandbox`, like every other tool that reads uploaded files, with its
time limit (the whole process group is killed when it passes), address-space and CPU
limits, a cap on the size of the files it writes and an environment without secrets.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dossier_service.sandbox import run_in_sandbox

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
_TARGET = "dossier_service.services.sip.pdfa:render"
#: The sandbox's answer is a reason or nothing: far below this.
_RESULT_BYTES = 16 * 1024
#: CPU seconds beyond the time limit (the wall-clock limit ends a run first).
_CPU_MARGIN_S = 5


@dataclass(frozen=True)
class PdfaConverter:
    """Ghostscript (``-dPDFA=2``) turning a PDF into PDF/A-2b, under time and memory limits.

    Ghostscript runs with -dSAFER (it may read only the files named and the colour profile)
    in the sandbox. PDFACompatibilityPolicy=2 makes Ghostscript fail instead of silently
    writing a plain PDF when it cannot conform; the output is then checked to declare PDF/A-2
    with an output intent. This is no full conformance check (that needs veraPDF).
    """

    gs: str
    icc: Path
    timeout_s: float = 300.0
    memory_mb: int = 2048
    max_input_bytes: int = 500 * 1024 * 1024
    #: Largest file Ghostscript may write (the rendition, its temporary files).
    max_output_bytes: int = 2 * 500 * 1024 * 1024

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

    def convert(self, source: Path, target: Path, work_dir: Path) -> str | None:
        """Write the PDF/A rendition of ``source`` to ``target``; None on success, else why not."""
        if source.stat().st_size > self.max_input_bytes:
            return f"larger than {self.max_input_bytes // (1024 * 1024)} MiB; not converted"
        definition = work_dir / "pdfa_def.ps"
        if not definition.exists():
            definition.write_text(_PDFA_DEF.format(icc=str(self.icc)), encoding="ascii")
        job = {
            "gs": self.gs,
            "icc_dir": str(self.icc.parent),
            "definition": str(definition),
            "source": str(source),
            "target": str(target),
            "work_dir": str(work_dir),
        }
        outcome = run_in_sandbox(
            _TARGET,
            job,
            timeout_s=self.timeout_s,
            max_memory_mb=self.memory_mb,
            max_output_bytes=_RESULT_BYTES,
            cpu_seconds=math.ceil(self.timeout_s) + _CPU_MARGIN_S,
            max_file_bytes=self.max_output_bytes,
        )
        if outcome.status == "ok":
            reason: str | None = outcome.value
            return reason
        if outcome.status == "timeout":
            return f"Ghostscript took longer than {self.timeout_s:g} s"
        if outcome.status in ("memory", "killed"):
            return f"Ghostscript needed more than {self.memory_mb} MB of memory"
        if outcome.status == "error":
            return f"the rendition could not be checked ({outcome.error})"
        return f"Ghostscript ended abnormally ({outcome.status}: {outcome.error or ''})".strip()


def render(job: dict[str, Any]) -> str | None:
    """Sandbox target: run Ghostscript on the job's files and check the rendition."""
    work_dir = job["work_dir"]
    command = [
        job["gs"],
        "-dPDFA=2",
        "-dBATCH",
        "-dNOPAUSE",
        "-dSAFER",
        "-dQUIET",
        "-dNOOUTERSAVE",
        f"--permit-file-read={job['icc_dir']}/",
        "-sColorConversionStrategy=RGB",
        "-dPDFACompatibilityPolicy=2",
        "-sDEVICE=pdfwrite",
        f"-sOutputFile={job['target']}",
        job["definition"],
        job["source"],
    ]
    env = {"PATH": "/usr/bin:/bin", "HOME": work_dir, "TMPDIR": work_dir}
    try:
        completed = subprocess.run(  # noqa: S603 - absolute tool path, fixed arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=work_dir,
            check=False,
        )
    except OSError as exc:
        return f"Ghostscript could not be started ({exc.strerror})"
    if completed.returncode != 0:
        tail = completed.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return f"Ghostscript failed (exit status {completed.returncode}) {tail[0][:200]}".strip()
    return _check_pdfa(Path(job["target"]), Path(job["source"]))


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
