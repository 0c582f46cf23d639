"""Peer servers for the live suite: small runner scripts and their on-demand installer."""
