"""Job secrets beyond tokens: references, OpenBao/Vault, resolving references into values."""
