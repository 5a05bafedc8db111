"""The nginx reverse proxy `dossier serve` starts in front of gunicorn (slow clients wait there)."""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: The template docker-compose's proxy service uses too (deploy/nginx/templates holds a copy
#: that tests/test_slow_clients.py keeps equal to this one).
TEMPLATE = Path(__file__).with_name("nginx") / "dossier.conf.template"
#: Where Debian's nginx-light puts the binary (sbin is often not on a user's PATH).
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

#: The main context around the template: everything under DATA_DIR/proxy, so nginx runs
#: as the current user, without root, and two instances on one host do not meet.
_MAIN = """# Written by `dossier serve` at every start; edit {template} instead.
daemon off;
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    include {dir}/dossier.conf;
}}
"""


@dataclass
class Proxy:
    """A running nginx in front of gunicorn's unix socket."""

    process: subprocess.Popen[bytes]
    socket: Path

    def stop(self) -> None:
        """Let nginx finish its requests (SIGQUIT), then kill it if it does not end."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def find_nginx() -> str | None:
    """The nginx binary, or None if it is not installed."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((c for c in _CANDIDATES if Path(c).is_file()), None)


def render(template: str, values: dict[str, str]) -> str:
    """Replace the ${DOSSIER_PROXY_*} placeholders, as envsubst does in the nginx image."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\$\{(DOSSIER_PROXY_[A-Z_]+)\}", value, template)


def listen_address(host: str, port: int) -> str:
    """nginx's form of host:port (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when `dossier serve` dies, even by SIGKILL (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start(
    nginx: str, data_dir: Path, host: str, port: int, *, max_body: int, max_upload: int
) -> Proxy:
    """Write the configuration under DATA_DIR/proxy and start nginx; gunicorn binds the socket."""
    directory = data_dir / "proxy"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    sock = directory / "gunicorn.sock"
    values = {
        "DOSSIER_PROXY_LISTEN": listen_address(host, port),
        "DOSSIER_PROXY_UPSTREAM": f"unix:{sock}",
        "DOSSIER_PROXY_MAX_BODY": str(max_body),
        "DOSSIER_PROXY_MAX_UPLOAD": str(max_upload),
    }
    (directory / "dossier.conf").write_text(render(TEMPLATE.read_text(), values))
    conf = directory / "nginx.conf"
    # Started by root, nginx's workers would drop to "nobody" and could not reach gunicorn's
    # socket in our 0700 directory: they run as the user gunicorn runs as (as without root).
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    conf.write_text(_MAIN.format(dir=directory, template=TEMPLATE, user=user))
    # -e: the error log before the configuration is read (the default is under /var/log).
    command = [nginx, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    check = subprocess.run(  # noqa: S603
        [*command, "-t", "-q"], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {check.stderr.strip()}")
    # The command is our own nginx path and files in our data directory.
    process = subprocess.Popen(command, preexec_fn=_die_with_parent)  # noqa: S603
    time.sleep(0.2)
    if process.poll() is not None:
        error_log = (directory / "error.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"nginx ended at once (exit {process.returncode}): {error_log}")
    return Proxy(process, sock)
