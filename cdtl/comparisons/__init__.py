"""Experiments that compare several models under one protocol: each module is a ``kind`` of config that ``cdtl run`` runs."""
