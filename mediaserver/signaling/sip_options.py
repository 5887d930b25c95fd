"""What the SIP front end reads of the settings, as values: `SipOptions` (built by app.py) with
its `[sip.security]` and `[sip.tls]` parts. Plain data; the front end is in sip.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mediaserver.kernel.media import MediaParams
from mediaserver.kernel.media_timeout import MediaTimeouts
from mediaserver.signaling.sip_dialer import DialerOptions, Registration


@dataclass(frozen=True)
class SipAccess:
    """`[sip.security]`: who may call (trunks by address, users by digest) and how fast."""

    realm: str = "mediaserver"
    challenge: int = 401  # 407: challenge as a proxy
    nonce_lifetime_s: int = 300
    rate_limit_per_s: int = 20  # 0: no rate limit
    rate_limit_burst: int = 40
    trunks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> IPs/networks
    users: Mapping[str, str] = field(default_factory=dict)  # username -> password


@dataclass(frozen=True)
class SipTls:
    """`[sip.tls]`: port 0 = no TLS listener."""

    port: int = 0
    cert: str = ""
    key: str = ""


@dataclass(frozen=True)
class SipOptions:
    """What the SIP front end reads of the settings, as values (built by app.py)."""

    host: str
    port: int
    contact_host: str
    user_agent: str
    codecs: tuple[str, ...]  # offered/accepted, in preference order ([rtp].codecs)
    jitter_depth_frames: int = MediaParams.jitter_depth_frames
    jitter_max_depth_frames: int = MediaParams.jitter_max_depth_frames
    unknown_user: str = "default"  # or "reject": 404 for a user with no route
    known_users: frozenset[str] = frozenset()  # the users of [routes.users]
    route_header: str = ""
    max_body_bytes: int = 32768
    outbound_proxy: str = ""  # host[:port] for calls to phone numbers
    media_encryption: str = "off"  # SDES-SRTP: "off", "optional" or "required" (plain offers get 488)
    media_timeouts: MediaTimeouts = MediaTimeouts()  # [rtp] timeout_s, hold_timeout_s (kernel/media_timeout.py)
    access: SipAccess = SipAccess()
    tls: SipTls = SipTls()
    register: Registration = Registration()

    def dialer(self) -> DialerOptions:
        return DialerOptions(
            contact_host=self.contact_host,
            codecs=self.codecs,
            jitter_depth_frames=self.jitter_depth_frames,
            jitter_max_depth_frames=self.jitter_max_depth_frames,
            register=self.register,
            outbound_proxy=self.outbound_proxy,
            media_encryption=self.media_encryption,
        )
