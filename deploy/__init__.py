"""Deployment files (Dockerfile, compose, systemd, Kubernetes) and their offline checks.

`python -m deploy.verify` (run by `make lint`) checks what can be checked without a container
engine or a cluster.
"""
