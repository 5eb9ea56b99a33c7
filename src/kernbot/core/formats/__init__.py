"""Reading kernel log text in every format a user has into `Record`s (reader.py is the entry)."""
