"""The call state machine: an Enum, a table and one exception (docs/design.md §3).

Every transition a call can make is in TRANSITIONS; nothing here knows whether the call came
over SIP or WebRTC. An event that is not allowed in the current state raises InvalidTransition
with both names in the message.
"""

from __future__ import annotations

import enum


class CallState(enum.Enum):
    NEW = "new"
    RINGING = "ringing"
    ACTIVE = "active"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


class CallEvent(enum.Enum):
    RINGING_SENT = "ringing_sent"
    ANSWERED = "answered"
    HANGUP_REQUESTED = "hangup_requested"  # SWML hangup, end of document, shutdown
    REMOTE_HUNG_UP = "remote_hung_up"  # BYE or CANCEL from the caller
    SIGNALING_ENDED = "signaling_ended"  # the SIP dialog is gone (our BYE answered or timed out)


TRANSITIONS: dict[CallState, dict[CallEvent, CallState]] = {
    CallState.NEW: {
        CallEvent.RINGING_SENT: CallState.RINGING,
        CallEvent.ANSWERED: CallState.ACTIVE,
        CallEvent.HANGUP_REQUESTED: CallState.HANGING_UP,
        CallEvent.REMOTE_HUNG_UP: CallState.ENDED,
        CallEvent.SIGNALING_ENDED: CallState.ENDED,
    },
    CallState.RINGING: {
        CallEvent.ANSWERED: CallState.ACTIVE,
        CallEvent.HANGUP_REQUESTED: CallState.HANGING_UP,
        CallEvent.REMOTE_HUNG_UP: CallState.ENDED,
        CallEvent.SIGNALING_ENDED: CallState.ENDED,
    },
    CallState.ACTIVE: {
        CallEvent.HANGUP_REQUESTED: CallState.HANGING_UP,
        CallEvent.REMOTE_HUNG_UP: CallState.ENDED,
        CallEvent.SIGNALING_ENDED: CallState.ENDED,
    },
    CallState.HANGING_UP: {
        CallEvent.HANGUP_REQUESTED: CallState.HANGING_UP,
        CallEvent.REMOTE_HUNG_UP: CallState.ENDED,
        CallEvent.SIGNALING_ENDED: CallState.ENDED,
    },
    CallState.ENDED: {
        # Late duplicates (a BYE crossing ours) are harmless once the call is over.
        CallEvent.HANGUP_REQUESTED: CallState.ENDED,
        CallEvent.REMOTE_HUNG_UP: CallState.ENDED,
        CallEvent.SIGNALING_ENDED: CallState.ENDED,
    },
}


class InvalidTransition(RuntimeError):
    def __init__(self, state: CallState, event: CallEvent) -> None:
        super().__init__(f"{event.name} is not allowed in {state.name}")
        self.state = state
        self.event = event


def next_state(state: CallState, event: CallEvent) -> CallState:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise InvalidTransition(state, event) from None
