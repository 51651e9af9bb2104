"""Google Cloud drivers: gcp-bq, gcp-firestore, gcp-gcs and gcp-pubsub (declarations in the submodules)."""
