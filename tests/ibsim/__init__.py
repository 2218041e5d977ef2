"""Conformance tests of ibsim with the unmodified ib_async client."""
