"""Pure SIP dispatch logic: trunk matching, dispatch-rule selection and evaluation, API validation.

Nothing here does I/O; every function takes ``livekit.protocol.sip`` messages and plain values.
"""
