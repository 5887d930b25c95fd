"""TLS for SIP (RFC 3261 §26.2, RFC 5630): a server context from the configured PEM files.

Theory of operation: SIP over TLS is SIP over TCP inside a TLS session, so the stream framing
(`StreamConnection`) is the same; only the socket is wrapped. The context is built once at
start-up and fails there, naming the file, when a certificate or key cannot be loaded. We do not
ask callers for client certificates (phones rarely have them; digest auth identifies users).
"""

from __future__ import annotations

import ssl


class TlsConfigError(OSError):
    """The certificate or key could not be loaded; the message names the file and the reason.
    An OSError, so that start-up reports it like a port in use and exits non-zero."""


def server_context(cert: str, key: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ server context for `cert` (PEM chain) and `key` (PEM; "" when in the cert file)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"sip.tls.cert/key: cannot load {cert!r} / {key!r}: {exc}") from None
    return context
