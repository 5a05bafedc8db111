"""Browser tests of the web interface (Playwright driving Debian's chromium)."""
