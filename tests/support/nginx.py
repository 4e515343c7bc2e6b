"""deploy/nginx.conf run for real on loopback ports, in front of local server processes.

Used by the clause-routing test (tests/scaleout/test_clause_routing.py) and the public pages'
benchmark (bench/public_bench.py --proxy nginx). The site is the deployed file with only what a
test machine must change: plain HTTP on a loopback port instead of TLS, the cache in a folder of
the caller's, the static files from this checkout, the Host header with its port (the proxy's
is not 443), and the upstreams' ``server`` lines pointing at the caller's processes.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
MIME_TYPES = "/etc/nginx/mime.types"  # Debian's nginx package
# The deployed file's two example processes; every upstream lists them.
DEPLOYED_SERVERS = ("server 127.0.0.1:5001", "server 127.0.0.1:5002")


def nginx_binary() -> str | None:
    """Where nginx is; Debian puts it in /usr/sbin, which a user's PATH may lack."""
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    return found if os.access(found, os.X_OK) else None


def site_config(folder: Path, listen_port: int, app_ports: list[int], log_upstreams: bool = False) -> Path:
    """nginx.conf for ``folder``: the deployed site with its upstreams on ``app_ports`` (one or
    two processes) and its HTTPS server on ``listen_port``. With ``log_upstreams``, every request
    is logged to ``folder``/upstreams.log as the process that served it and the request line (a
    websocket's once it closes): :func:`served_by` reads it."""
    if not 1 <= len(app_ports) <= len(DEPLOYED_SERVERS):
        raise ValueError(f"deploy/nginx.conf lists {len(DEPLOYED_SERVERS)} processes; got {len(app_ports)}")
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("/var/cache/nginx/codedraft-public", str(folder / "nginx-cache"))
    site = site.replace("/srv/codedraft/static/", f"{ROOT / 'static'}/")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen_port};").replace("http2 on;", "")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
    # $host drops the port: right on 443, where the browser names none, but here the browser's
    # Origin names this port, and Engine.IO refuses a websocket whose Origin is not its Host.
    site = site.replace("Host $host;", "Host $http_host;")
    unused = DEPLOYED_SERVERS[len(app_ports):]
    site = "\n".join(line for line in site.splitlines()
                     if not line.strip().startswith(("ssl_certificate", *unused)))
    for deployed, port in zip(DEPLOYED_SERVERS, app_ports, strict=False):
        site = site.replace(deployed, f"server 127.0.0.1:{port}")
    main = folder / "nginx.conf"
    logging = (f"log_format upstreams '$upstream_addr \"$request\"';\naccess_log {folder / 'upstreams.log'} upstreams;"
               if log_upstreams else "access_log off;")
    main.write_text(f"daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
                    f"error_log {folder / 'nginx.log'};\n"
                    f"events {{ worker_connections 4096; }}\n"
                    # What Debian's own nginx.conf gives the site it includes: files' content types.
                    f"http {{\ninclude {MIME_TYPES};\ndefault_type application/octet-stream;\n{logging}\n{site}\n}}\n")
    return main


def start_nginx(binary: str, folder: Path, listen_port: int, app_ports: list[int],
                log_upstreams: bool = False) -> subprocess.Popen[bytes]:
    """nginx in the foreground, serving the deployed site on ``listen_port``; the caller stops it."""
    # nginx's workers run as an unprivileged user: they must reach the cache in the folder.
    folder.chmod(0o755)
    (folder / "nginx-cache").mkdir(mode=0o777, exist_ok=True)
    (folder / "nginx-cache").chmod(0o777)
    config = site_config(folder, listen_port, app_ports, log_upstreams)
    with (folder / "nginx.out").open("ab") as errors:  # nginx keeps its own copy of the descriptor
        return subprocess.Popen([binary, "-c", str(config), "-p", str(folder)], stdout=subprocess.DEVNULL,
                                stderr=errors)


def served_by(folder: Path) -> list[tuple[int, str]]:
    """(the serving process's port, the request line) of every request nginx has logged so far
    (``log_upstreams``)."""
    log = folder / "upstreams.log"
    if not log.exists():
        return []
    served = []
    for line in log.read_text().splitlines():
        upstream, _, request = line.partition(" ")
        # "127.0.0.1:5001", or several addresses when nginx tried one and then another.
        port = upstream.rsplit(",", 1)[-1].strip().rsplit(":", 1)[-1]
        if port.isdigit():
            served.append((int(port), request.strip('"')))
    return served
