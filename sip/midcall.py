"""Mid-call requests of ``SipEndpoint``: re-INVITE and UPDATE offers, and INFO DTMF.

Theory of operation: ``MidCallMixin`` is mixed into ``SipEndpoint`` (as ``UacMixin`` is) and
shares its tables. In a confirmed dialog, a re-INVITE or UPDATE without an offer, or with the
same ``o=`` line as the last one (RFC 3264 §8: unchanged session version), is a session refresh
answered at once with our current SDP. A changed offer is handed to the application as
``OfferReceived`` and stays pending (``call.offer_tx``) until ``accept_offer`` answers it 200
with the application's SDP (a re-INVITE's 2xx is then resent until its ACK) or ``reject_offer``
refuses it (the session stays as it was, RFC 3261 §14.2). While one offer is pending, or our 2xx
waits for its ACK, another offer gets 491. INFO with ``application/dtmf-relay`` or
``application/dtmf`` becomes ``DtmfReceived``; an empty INFO is a keep-alive (200); other bodies
get 415 with the types we accept.
"""

from __future__ import annotations

from collections import deque

from mssip import events as ev
from mssip.call import CallState, InboundCall, Pending2xx
from mssip.errors import InvalidTransition, SipParseError
from mssip.events import SipEvent
from mssip.info import INFO_TYPES, parse_dtmf_info
from mssip.message import Request, Response, make_response
from mssip.screening import reason_phrase, same_session
from mssip.transaction import ServerTransaction
from mssip.uri import parse_name_addr


class MidCallMixin:
    # Provided by SipEndpoint.
    _events: deque[SipEvent]

    def _call(self, call_id: str) -> InboundCall:
        raise NotImplementedError

    def _dialog_call(self, request: Request) -> InboundCall | None:
        raise NotImplementedError

    def _respond(self, tx: ServerTransaction, response: Response, now: float) -> bytes:
        raise NotImplementedError

    def _refuse(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str,
        extra: list[tuple[str, str]] | None = None,
        *,
        now: float,
    ) -> None:
        raise NotImplementedError

    def _dialog_response(self, call: InboundCall, request: Request, status: int, reason: str) -> Response:
        raise NotImplementedError

    def _describe(self, response: Response, sdp: bytes) -> None:
        raise NotImplementedError

    def accept_offer(self, call_id: str, sdp: bytes, now: float) -> None:
        """Answer the pending mid-call offer (``OfferReceived``) with 200 OK and ``sdp``."""
        call = self._call(call_id)
        tx = call.offer_tx
        if tx is None or call.ended:
            raise InvalidTransition(f"ACCEPT_OFFER with no offer pending (call {call_id})")
        call.offer_tx = None
        response = self._dialog_response(call, tx.request, 200, "OK")
        self._describe(response, sdp)
        call.answer_sdp, call.remote_sdp = sdp, tx.request.body
        data = self._respond(tx, response, now)
        if tx.is_invite:
            call.pending_2xx = Pending2xx.start(data, tx.request.cseq.number, tx, now)

    def reject_offer(self, call_id: str, status: int, reason: str, now: float) -> None:
        """Refuse the pending mid-call offer (488 usually); the session stays as it was (§14.2)."""
        call = self._call(call_id)
        tx = call.offer_tx
        if tx is None or call.ended:
            raise InvalidTransition(f"REJECT_OFFER with no offer pending (call {call_id})")
        call.offer_tx = None
        self._respond(tx, self._dialog_response(call, tx.request, status, reason), now)

    def _on_reinvite(self, request: Request, tx: ServerTransaction, now: float) -> None:
        call = self._offer_call(request, tx, now)
        if call is None:
            return
        self._respond(tx, make_response(request, 100, "Trying"), now)
        try:  # a re-INVITE is a target refresh (RFC 3261 §12.2.2)
            call.dialog.remote_target = parse_name_addr(request.headers.get("Contact") or "").uri
        except SipParseError:
            pass
        if request.body and not same_session(request.body, call.remote_sdp):
            call.offer_tx = tx
            self._events.append(ev.OfferReceived(call.call_id, request.body, "INVITE"))
            return
        # No offer (we offer our SDP again; the ACK answers) or an unchanged one: a session refresh.
        response = self._dialog_response(call, request, 200, "OK")
        self._describe(response, call.answer_sdp or b"")
        data = self._respond(tx, response, now)
        call.pending_2xx = Pending2xx.start(data, request.cseq.number, tx, now)

    def _on_update(self, request: Request, tx: ServerTransaction, now: float) -> None:
        call = self._offer_call(request, tx, now)
        if call is None:
            return
        if request.body and not same_session(request.body, call.remote_sdp):
            call.offer_tx = tx
            self._events.append(ev.OfferReceived(call.call_id, request.body, "UPDATE"))
            return
        response = self._dialog_response(call, request, 200, "OK")
        self._describe(response, (call.answer_sdp or b"") if request.body else b"")
        self._respond(tx, response, now)

    def _offer_call(self, request: Request, tx: ServerTransaction, now: float) -> InboundCall | None:
        """The confirmed call a re-INVITE/UPDATE may change, or None after refusing it (§14.2)."""
        call = self._dialog_call(request)
        if call is None or call.ended:
            self._refuse(tx, 481, "Call/Transaction Does Not Exist", now=now)
        elif not call.dialog.accept_remote_cseq(request.cseq.number):
            self._refuse(tx, 500, "CSeq Out of Order", now=now)
        elif call.state is not CallState.CONFIRMED or call.pending_2xx is not None or call.offer_tx is not None:
            self._refuse(tx, 491, "Request Pending", now=now)
        else:
            call.dialog.remote_addr = tx.addr
            return call
        return None

    def _on_info(self, request: Request, tx: ServerTransaction, now: float) -> None:
        call = self._dialog_call(request)
        if call is None or call.ended:
            self._refuse(tx, 481, "Call/Transaction Does Not Exist", now=now)
            return
        if not call.dialog.accept_remote_cseq(request.cseq.number):
            self._refuse(tx, 500, "CSeq Out of Order", now=now)
            return
        if not request.body:
            self._respond(tx, make_response(request, 200, "OK"), now)  # an empty INFO: a keep-alive
            return
        if request.content_type not in INFO_TYPES:
            self._refuse(tx, 415, "Unsupported Media Type", [("Accept", ", ".join(INFO_TYPES))], now=now)
            return
        try:
            digit, duration_ms = parse_dtmf_info(request.content_type or "", request.body)
        except ValueError as err:
            self._refuse(tx, 400, reason_phrase(str(err)), now=now)
            return
        self._respond(tx, make_response(request, 200, "OK"), now)
        self._events.append(ev.DtmfReceived(call.call_id, digit, duration_ms))
