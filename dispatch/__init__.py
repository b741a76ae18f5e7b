"""Pure SIP dispatch logic: trunk matching, dispatch-rule selection and evaluation, API validation.

Nothing here does I/O; every function takes ``livekit.protocol.sip`` messages and plain values.

* ``decide``    — the whole inbound decision (trunk → rule → room); ``is_open_configuration``
* ``trunks``    — which inbound trunk admits a call, and digest-auth requirements
* ``rules``     — which dispatch rule takes it (priorities, PINs)
* ``evaluate``  — room name, participant identity/name/metadata/attributes, media, limits
* ``validate``  — field and conflict checks for the API (``errors`` holds the Twirp codes)
* ``legacy``    — deprecated ``SIPTrunkInfo`` seen as inbound/outbound trunks and back
* ``simulate``  — the operator's dry run behind ``sipbridge dispatch test``
* ``numbers``, ``addresses``, ``header_rules``, ``rule_kinds``, ``call`` — shared pieces

See docs/dispatch.md.
"""
