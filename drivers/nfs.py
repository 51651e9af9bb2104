"""nfs: files in a folder of an NFSv3 export are the work (procx); pushx writes a file there."""

from __future__ import annotations

from core.options import BOTH, DriverSpec, Option
from drivers.common import move_ops, selector_options

SPEC = DriverSpec(
    "nfs",
    "files on an NFSv3 export: each file is one unit of work",
    [
        Option("nfs-host", help="NFS server host name"),
        Option("nfs-target", help="exported path to mount", placeholder="PATH"),
        Option("nfs-folder", help="folder inside the export holding the work files", placeholder="PATH"),
        *selector_options("nfs", key_sides=BOTH),
        *move_ops("nfs", "folder"),
    ],
    extra="nfs",
    requires=("libnfs",),
    blocking=False,
)
