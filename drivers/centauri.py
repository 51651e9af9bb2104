"""centauri: procx takes the oldest pending message of a channel; pushx sends one encrypted message."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option

SPEC = DriverSpec(
    "centauri",
    "a Centauri peer: each encrypted message of a channel is one unit of work",
    [
        Option("centauri-peer-url", placeholder="URL", help="base URL of the Centauri peer API"),
        Option("centauri-channel", default="default", help="channel to read from or send to"),
        Option("centauri-key", sides=PROCX, secret=True, group="auth",
               help="private key (PEM text) to decrypt the messages"),
        Option("centauri-key-base64", sides=PROCX, secret=True, group="auth",
               help="private key as base64 of the PEM (wins over -centauri-key)"),
        Option("centauri-public-key", sides=PUSHX, group="auth",
               help="recipient's RSA public key (PEM text) to encrypt for"),
        Option("centauri-public-key-base64", sides=PUSHX, group="auth",
               help="recipient's public key as base64 of the PEM (wins over -centauri-public-key)"),
        Option("centauri-message-type", default="bytes", sides=PUSHX, choices=("bytes", "file"), group="push",
               help="bytes, or file: the message carries a file name (-centauri-filename)"),
        Option("centauri-filename", sides=PUSHX, group="push", help="file name sent with message type file"),
    ],
    extra="centauri",
    requires=("cryptography",),
)
