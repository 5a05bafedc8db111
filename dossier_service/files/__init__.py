"""Checks on untrusted uploaded files: type sniffing and sandboxed inspection."""
