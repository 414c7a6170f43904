"""On-disk formats: sentence-transformers' ``modules.json`` layout, read and written."""
