"""A private PostgreSQL cluster for local runs and test sessions.

Uses the system's ``initdb``/``pg_ctl`` (PATH or ``/usr/lib/postgresql/*/bin``), else the binaries
shipped in the ``pgserver`` wheel. PostgreSQL refuses to run as root, so as root the cluster runs
as an unprivileged user through ``runuser``. It listens on 127.0.0.1 only, with trust auth: the
cluster is private to this machine's user and never exposed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "kassa"


def find_bin_dir() -> Path:
    """Where ``pg_ctl`` lives: PATH first, then Debian's layout, then the pgserver wheel."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    try:
        import pgserver  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "no PostgreSQL binaries: install postgresql or `pip install pgserver`"
        ) from exc
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The OS user to run PostgreSQL as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "kassa"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "kassa"],
        check=True,
    )
    return "kassa"


def _grant_traverse(path: Path, user: str) -> None:
    """Let ``user`` reach ``path``: add o+x to ancestors that lack it (e.g. a 0700 temp dir).
    Only traversal is granted; nothing becomes listable or readable."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


@dataclass
class Cluster:
    """One PostgreSQL cluster in ``data_dir``, listening on ``port``."""

    data_dir: Path
    port: int
    bin_dir: Path
    os_user: str | None

    @classmethod
    def at(cls, data_dir: Path, port: int | None = None) -> Cluster:
        data_dir = data_dir.resolve()
        port_file = data_dir.parent / (data_dir.name + ".port")
        if port is None:
            port = int(port_file.read_text()) if port_file.exists() else free_port()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(port))
        return cls(data_dir, port, find_bin_dir(), _run_as())

    def dsn(self, dbname: str = "kassa") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / (self.data_dir.name + ".log")

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.os_user:
            return ["runuser", "-u", self.os_user, "--", *cmd]
        return cmd

    def _chown(self, path: Path) -> None:
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self, *, durable: bool = True) -> None:
        """Create the cluster. ``durable=False`` (test sessions) turns fsync off: a throwaway
        cluster does not need to survive a power cut, and the suite runs much faster."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if self.os_user:
            _grant_traverse(self.data_dir.parent, self.os_user)
        self._chown(self.data_dir)
        self.log_file.touch()
        self._chown(self.log_file)
        subprocess.run(
            self._cmd(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                *([] if durable else ["--no-sync"]),
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        conf = [
            "listen_addresses = '127.0.0.1'",
            "unix_socket_directories = ''",
            "max_connections = 300",
            "shared_buffers = '256MB'",
            "work_mem = '16MB'",
            "wal_buffers = '16MB'",
            "max_wal_size = '2GB'",
            "checkpoint_timeout = '15min'",
            "log_min_messages = warning",
            "log_min_error_statement = panic",
        ]
        if not durable:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data_dir / "postgresql.conf", "a") as f:
            f.write("\n# kassa\n" + "\n".join(conf) + "\n")

    def start(self) -> None:
        subprocess.run(
            self._cmd(
                "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir)),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )

    def create_database(self, name: str = "kassa") -> None:
        """Create ``name`` unless it exists."""
        exists = subprocess.run(
            self._cmd(
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
            ),
            check=True,
            capture_output=True,
            text=True,
            cwd="/",
        ).stdout.strip()
        if not exists:
            subprocess.run(
                self._cmd(
                    "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name
                ),
                check=True,
                cwd="/",
            )

    def pg_dump(self, dbname: str = "kassa") -> str:
        """A plain-SQL dump of ``dbname`` (backups, and the PCI scan of what is stored)."""
        return subprocess.run(
            self._cmd("pg_dump", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, dbname),
            check=True,
            capture_output=True,
            text=True,
            cwd="/",
        ).stdout

    def pgbench(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the cluster's own pgbench (the benchmark reference)."""
        return subprocess.run(
            self._cmd("pgbench", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, *args),
            check=True,
            capture_output=True,
            text=True,
            cwd="/",
        )
