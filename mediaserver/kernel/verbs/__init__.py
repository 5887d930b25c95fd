"""Handlers of the SWML effects beyond answer/play/sleep/hangup/ai, one module per concern.

Each is `async handler(context, call, effect) -> EffectResult | None` with a `VerbContext`
(context.py), never the executor; the executor's `HANDLERS` table maps effect types to them.
A module that exports `VERB`/`VERBS` (a `KernelVerb`: effect, builder and handler together) is a
whole verb, found by registry.py; adding a verb is adding such a module (docs/architecture.md).
"""
