"""What the Google drivers share: the project option (gcp-bq, gcp-firestore, gcp-pubsub; gcp-gcs does not use
it) and one-line errors from the Google client libraries' exceptions."""

from __future__ import annotations

import re

from core.errors import ProviderError, one_line
from core.options import Option

EXTRA = "gcp"

GCP_OPTIONS: list[Option] = [
    Option("gcp-project-id", help="Google Cloud project of the client (empty: from the default credentials)"),
]


def google_error(driver: str, host: str, emulator: str, exc: BaseException, what: str) -> ProviderError:
    """A ProviderError naming the driver, the endpoint and the step that failed, in one line; `emulator` is the
    variable that points the client at an emulator (named when no credentials were found)."""
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    if isinstance(exc, gx.RetryError) and exc.cause is not None:
        exc = exc.cause
    if isinstance(exc, ax.DefaultCredentialsError):
        return ProviderError(f"driver {driver}: no Google credentials found for {host} (set "
                             f"GOOGLE_APPLICATION_CREDENTIALS, or {emulator} for an emulator)")
    if isinstance(exc, gx.Forbidden | gx.Unauthorized):  # PermissionDenied / Unauthenticated too
        return ProviderError(f"driver {driver}: {host} refused to {what}: permission denied ({one_line(exc)})")
    if isinstance(exc, gx.ServiceUnavailable | gx.DeadlineExceeded):
        return ProviderError(f"driver {driver}: cannot reach {host} to {what}: {one_line(exc)}")
    if isinstance(exc, gx.GoogleAPICallError):
        return ProviderError(f"driver {driver}: cannot {what} on {host}: {one_line(exc)}")
    reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)", str(exc))  # a connection error deep in urllib3/grpc
    return ProviderError(f"driver {driver}: cannot reach {host} to {what}: "
                         f"{reason[1].strip() if reason else one_line(exc)}")
