"""Hadoop's formats: Writable codec, token identifiers, tokens, the token file, Hadoop and Hive site files."""
