"""The web app's side of the service: what a browser needs to reach the chain, and the built
pages (frontend/app, built into frontend/dist) served at ``/``."""
