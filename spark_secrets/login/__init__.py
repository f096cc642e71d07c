"""Logging in: Kerberos (the TGT and keytab login), SPNEGO for HTTP, SASL/GSSAPI for Thrift."""
