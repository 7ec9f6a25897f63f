"""The publishing layer: notebook helpers (``notebook``), the book runner (``runner``), the browser
check of the built pages (``browser_check``) and the reproduction report's data (``report``)."""
