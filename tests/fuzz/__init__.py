"""Fuzzing of every parser a caller can reach (issue 17, item 4): one module per target.

SIP (datagrams, TCP framing, the UAS and UAC on the wire), SDP offer/answer, RTP/RTCP and the
media path, RFC 4733 and INFO DTMF, SWML documents, SWAIG replies (actions, webhook replies,
DataMap webhook replies). Each target gets generated inputs and mutations of real messages and
checks the parser's contract: a value, or its documented error, within the deadline.

STUN is not fuzzed here: the server has no entry point of its own that takes raw STUN (or
DTLS/SRTP) packets; aiortc's ICE transport reads them (`aioice.stun.parse_message`) and our
WebRTC `CallMedia.receive_datagram` is a no-op, so that parser is covered by aiortc/aioice.
"""
