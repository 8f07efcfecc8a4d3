"""Verifying a dataset version from its manifest and the chain alone: no database, no API.

    report = verify_manifest(manifest_bytes, ChainReader(rpc_url), exports_dir=None)

``manifest_checks.py`` holds the checks that need only the manifest (pure), ``chain.py`` the
chain reads (JSON-RPC, paged and retried), ``verify.py`` runs both and assembles the report.
docs/audit.md lists every check, precisely enough to write another verifier.
"""
