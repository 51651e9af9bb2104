"""The file servers of the smb and nfs tests: Samba's smbd and nfs-ganesha, on 127.0.0.1 and free ports.

Each is started once per test session with its configuration in a temporary folder and stopped at the end;
if one cannot start, the tests that need it FAIL with the reason. Both need root (smbd to switch users and for
the throwaway Samba user, ganesha's FSAL_VFS for file handles). `ganesha` speaks NFSv4 only; `ganesha_v3`
(NFSv3) needs rpcbind on port 111 while it starts, for that moment only. CI installs them with
`apt-get install -y --no-install-recommends samba nfs-ganesha nfs-ganesha-vfs` (rpcbind comes with
nfs-ganesha, smbpasswd with samba). Test modules import the fixtures they use:
`from tests.drivers.file_servers import samba`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.conftest import _wait_until, free_port, listening, start_server
from tests.support import stop_process

SMB_USER = f"procxsmb{os.getpid()}"  # a throwaway system user, created for the session and removed after it
SMB_PASSWORD = "Smb-Secret-4711-recognisable"  # must never appear in any message
SMB_SHARE = "px"


def tree(folder: Path) -> dict[str, bytes]:
    """The files below a folder on this machine (relative name -> content); a missing folder holds none."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def put(root: Path, files: dict[str, bytes]) -> None:
    """Create files below `root` on this machine, with folders any client identity may write to."""
    for name, data in files.items():
        path = root / name
        for folder in reversed(path.relative_to(root).parents[:-1]):
            (root / folder).mkdir(exist_ok=True)
            (root / folder).chmod(0o777)
        path.write_bytes(data)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} must be started as root in these tests (they run as uid {os.geteuid()})")


def _port_open(port: int) -> bool:
    try:
        return listening(port)
    except OSError:
        return False


def _run(*cmd: str, input: bytes = b"") -> None:
    done = subprocess.run(cmd, input=input, capture_output=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:2])} failed: {done.stderr.decode(errors='replace').strip()}")


# ---------------------------------------------------------------------------------------------- Samba
@dataclass
class Samba:
    port: int
    share_dir: Path  # the share's folder on this machine (for set-up and checks)
    user: str = SMB_USER
    password: str = SMB_PASSWORD
    share: str = SMB_SHARE
    host: str = "127.0.0.1"

    @property
    def root(self) -> Path:
        return self.share_dir

    def args(self, password: str | None = None) -> list[str]:
        """The connection flags of procx/pushx."""
        return ["-driver", "smb", "-smb-host", self.host, "-smb-port", str(self.port), "-smb-user", self.user,
                "-smb-pass", self.password if password is None else password, "-smb-share", self.share]


SMB_CONF = """[global]
   server role = standalone server
   interfaces = lo
   bind interfaces only = yes
   smb ports = {port}
   disable netbios = yes
   private dir = {base}/private
   lock directory = {base}/lock
   state directory = {base}/state
   cache directory = {base}/cache
   pid directory = {base}/pid
   ncalrpc dir = {base}/lock/ncalrpc
   log file = {base}/log/smbd.log
   passdb backend = tdbsam:{base}/private/passdb.tdb
   map to guest = never
   server min protocol = SMB2_10
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes
[{share}]
   path = {share_dir}
   read only = no
   valid users = {user}
   force user = root
"""


@pytest.fixture(scope="session")
def samba(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
    """Samba's smbd (Debian's package), SMB2.1+ only, one share writable by a throwaway user."""
    _need_root("smbd")
    smbd, smbpasswd = shutil.which("smbd") or "/usr/sbin/smbd", shutil.which("smbpasswd")
    if not os.path.exists(smbd) or smbpasswd is None:
        pytest.fail("Samba is not installed: apt-get install -y --no-install-recommends samba smbclient")
    base = tmp_path_factory.mktemp("samba")
    for sub in ("private", "lock", "state", "cache", "pid", "log", "share"):
        (base / sub).mkdir()
    port = free_port()
    conf = base / "smb.conf"
    conf.write_text(SMB_CONF.format(port=port, base=base, share=SMB_SHARE, share_dir=base / "share", user=SMB_USER))
    created = subprocess.run(["id", "-u", SMB_USER], capture_output=True).returncode != 0
    if created:
        _run("useradd", "-M", "-s", "/usr/sbin/nologin", SMB_USER)
    proc = None
    try:
        _run(smbpasswd, "-c", str(conf), "-s", "-a", SMB_USER, input=f"{SMB_PASSWORD}\n{SMB_PASSWORD}\n".encode())
        # its own session: smbd signals its whole process group when it stops
        proc, _ = start_server([smbd, "--foreground", "--no-process-group", "-s", str(conf), "--debug-stdout"],
                               lambda: listening(port), "smbd", base / "smbd.out", start_new_session=True)
        yield Samba(port, base / "share")
    finally:
        if proc is not None:
            stop_process(proc)
        if created:
            subprocess.run(["userdel", SMB_USER], capture_output=True)


# ---------------------------------------------------------------------------------------------- nfs-ganesha
@dataclass
class Ganesha:
    port: int
    export_dir: Path  # the exported folder on this machine (for set-up and checks)
    mount_port: int = 0  # NFSv3 only: the MOUNT service
    host: str = "127.0.0.1"

    @property
    def root(self) -> Path:
        return self.export_dir

    def args(self, version: str = "") -> list[str]:
        """The connection flags of procx/pushx: NFSv4.1 (the pseudo path /export) or NFSv3 (the export's real
        path, through MOUNT); `version` "" leaves the choice to the driver."""
        v3 = bool(self.mount_port)
        args = ["-driver", "nfs", "-nfs-host", self.host, "-nfs-target", str(self.export_dir) if v3 else "/export",
                "-nfs-port", str(self.port)]
        args += ["-nfs-mount-port", str(self.mount_port)] if v3 else []
        return args + (["-nfs-version", version] if version else [])


GANESHA_CONF = """NFS_CORE_PARAM {{
    Bind_addr = 127.0.0.1;
    NFS_Port = {port};
    MNT_Port = {mount_port};
    Protocols = {version};
    Enable_UDP = false;
    Enable_NLM = false;
    Enable_RQUOTA = false;
}}
NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = "{base}/recovery"; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /export;
    Protocols = {version};
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = WARN; }}
"""


def _start_ganesha(base: Path, version: int) -> tuple[subprocess.Popen, Ganesha]:
    _need_root("ganesha.nfsd")
    binary = shutil.which("ganesha.nfsd")
    if binary is None:
        pytest.fail("nfs-ganesha is not installed: apt-get install -y --no-install-recommends nfs-ganesha "
                    "nfs-ganesha-vfs")
    export = base / "export"
    export.mkdir()
    export.chmod(0o777)  # the driver's default AUTH_SYS identity is uid/gid 1001, as the original's
    (base / "recovery").mkdir()
    port, mount_port = free_port(), free_port()
    conf = base / "ganesha.conf"
    conf.write_text(GANESHA_CONF.format(port=port, mount_port=mount_port, version=version, base=base, export=export))
    log = base / "ganesha.log"
    proc = subprocess.Popen([binary, "-F", "-f", str(conf), "-L", str(log), "-p", str(base / "ganesha.pid")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_until(lambda: listening(port), proc, "ganesha.nfsd", log)
    except BaseException:
        stop_process(proc)
        raise
    return proc, Ganesha(port, export, mount_port=mount_port if version == 3 else 0)


@pytest.fixture(scope="session")
def ganesha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ganesha]:
    """nfs-ganesha (Debian's package) with FSAL VFS: one export, NFSv4 over TCP only (no portmapper)."""
    proc, server = _start_ganesha(tmp_path_factory.mktemp("ganesha"), 4)
    try:
        yield server
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def ganesha_v3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ganesha]:
    """A second nfs-ganesha speaking NFSv3 only. Ganesha registers NFSv3 with a portmapper while it starts (and
    exits without one), so rpcbind runs for that window only (on port 111, all interfaces) unless one already
    runs; the clients then name the NFS and MOUNT ports themselves."""
    rpcbind = None
    if not _port_open(111):
        binary = shutil.which("rpcbind")
        if binary is None:
            pytest.fail("rpcbind is not installed (it comes with nfs-ganesha): apt-get install -y rpcbind")
        rpcbind, _ = start_server([binary, "-f", "-w"], lambda: listening(111), "rpcbind",
                                  tmp_path_factory.mktemp("rpcbind") / "rpcbind.log", start_new_session=True)
    try:
        proc, server = _start_ganesha(tmp_path_factory.mktemp("ganesha-v3"), 3)
    finally:
        if rpcbind is not None:
            stop_process(rpcbind)
    try:
        yield server
    finally:
        stop_process(proc)
