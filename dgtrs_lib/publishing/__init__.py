"""The publishing layer: notebook helpers (``notebook``); the book runner's command line (``runner``)
over the table of contents (``toc``), notebook execution (``execute``) and the book build
(``book_build``); the browser check of the built pages (``browser_check``); and the reproduction
report's data: the paper's public numbers (``paper_numbers``), our results files read back
(``results_files``) and the two side by side (``report``).

Taught in: How to run it (book/how-to-run.md)
"""
