"""smb: files on an SMB2/3 share are the work (procx); pushx writes a file there."""

from __future__ import annotations

from core.options import PROCX, DriverSpec, Option


def _phase_options(phase: str, when: str) -> list[Option]:
    return [
        Option(f"smb-{phase}-op", sides=PROCX, choices=("mv", "rm"),
               help=f"what to do with the file {when}: mv (rename within the share) or rm (empty: leave it)"),
        Option(f"smb-{phase}-key", sides=PROCX,
               help=f"path within the share to rename the file to {when} (default: the file's key)"),
        Option(f"smb-{phase}-key-template", sides=PROCX,
               help=f"rename template {when}; {{{{key}}}} = the key after its last backslash (wins over -key)"),
    ]


SPEC = DriverSpec(
    "smb",
    "files on an SMB share: each file is one unit of work",
    [
        Option("smb-host", help="SMB server host name", required=True),
        Option("smb-port", "int", 445, help="SMB server port"),
        Option("smb-user", help="NTLM user name (may be empty)"),
        Option("smb-pass", help="NTLM password", secret=True),
        Option("smb-share", help="share to mount"),
        Option("smb-key", required="pushx", help="exact path of the file within the share (pushx: the file to write)"),
        Option("smb-key-glob", sides=PROCX, group="retrieve",
               help="take the first path (in lexical order) matching this glob (*, ?, [...])"),
        *_phase_options("clear", "after success"),
        *_phase_options("fail", "after failure"),
    ],
    extra="smb",
    requires=("smbclient",),
    blocking=False,
)
