"""Options shared by gcp-bq, gcp-firestore and gcp-pubsub: the project (gcp-gcs does not use it)."""

from __future__ import annotations

from core.options import Option

EXTRA = "gcp"

GCP_OPTIONS: list[Option] = [
    Option("gcp-project-id", help="Google Cloud project of the client (empty: from the default credentials)"),
]
