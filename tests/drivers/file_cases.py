"""What the smb and nfs tests share: a fresh folder of the server's share or export per test, and a conformance
backend on it."""

from __future__ import annotations

import uuid

from tests.conformance import Backend
from tests.drivers.file_servers import Ganesha, Samba, tree


def fresh_folder(server: Samba | Ganesha) -> str:
    """A new folder of the share or export that any client identity may write to: its name."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    (server.root / name).mkdir()
    (server.root / name).chmod(0o777)
    return name


class FolderBackend(Backend):
    """Work as files in one folder of a file server (files hold no lease: a killed procx's work is there at once)."""

    redelivery_wait = 1.0

    def __init__(self, server: Samba | Ganesha, folder: str) -> None:
        self.server, self.folder = server, folder

    def pending(self) -> int:
        return len(tree(self.server.root / self.folder))
