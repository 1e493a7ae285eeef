"""Cross-level share requests (issue 16 item 4): a department here applying for a resource another platform
owns, and a department of another platform applying for one owned here, as signed platform-to-platform calls."""
