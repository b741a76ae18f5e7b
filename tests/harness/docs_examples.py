"""The JSON request files of LiveKit's trunk and dispatch-rule docs (shared/docs/livekit-telephony.md), as users
feed them to `lk`. Placeholders (<username>, <my-trunk>) are filled with concrete values."""

from __future__ import annotations

INBOUND_TRUNK = """{
  "trunk": {
    "name": "My trunk",
    "numbers": ["+15105550100"],
    "krispEnabled": true
  }
}"""

INBOUND_TRUNK_ALLOWED_NUMBERS = """{
   "trunk": {
     "name": "My trunk",
     "numbers": ["+15105550100"],
     "allowedNumbers": ["+13105550100", "+17145550100"]
   }
}"""

INBOUND_TRUNK_UPDATE = """{
  "name": "My trunk",
  "numbers": ["+15105550100"]
}"""

OUTBOUND_TRUNK_TWILIO = """{
  "trunk": {
    "name": "My outbound trunk",
    "address": "my-trunk.pstn.twilio.com",
    "numbers": ["+15105550100"],
    "authUsername": "user",
    "authPassword": "pass"
  }
}"""

OUTBOUND_TRUNK_ANY_NUMBER = """{
  "trunk": {
    "name": "My outbound trunk",
    "address": "sip.telnyx.com",
    "numbers": ["*"],
    "auth_username": "user",
    "auth_password": "pass"
  }
}"""

OUTBOUND_TRUNK_UPDATE = """{
   "name": "My updated outbound trunk",
   "address": "sip.telnyx.com",
   "numbers": ["+15105550100"]
}"""

DISPATCH_INDIVIDUAL_AGENT = """{
  "dispatch_rule":
    {
      "rule": {
        "dispatchRuleIndividual": {
          "roomPrefix": "call-"
        }
      },
      "name": "My dispatch rule",
      "roomConfig": {
        "agents": [{
          "agentName": "inbound-agent",
          "metadata": "job dispatch metadata"
        }]
      }
    }
}"""

DISPATCH_DIRECT = """{
  "dispatch_rule":
    {
      "rule": {
        "dispatchRuleDirect": {
          "roomName": "open-room"
        }
      },
      "name": "My dispatch rule"
    }
}"""

DISPATCH_DIRECT_PIN = """{
  "dispatch_rule":
    {
      "trunk_ids": [],
      "rule": {
        "dispatchRuleDirect": {
          "roomName": "safe-room",
          "pin": "12345"
        }
      },
      "name": "My dispatch rule"
    }
}"""

DISPATCH_CALLEE = """{
  "dispatch_rule":
    {
      "rule": {
        "dispatchRuleCallee": {
          "roomPrefix": "number-",
          "randomize": false
        }
      },
      "name": "My dispatch rule"
    }
}"""

DISPATCH_ATTRIBUTES = """{
  "dispatch_rule":
    {
      "attributes": {
        "<key_name1>": "<value1>",
        "<key_name2>": "<value2>"
      },
      "rule": {
        "dispatchRuleIndividual": {
          "roomPrefix": "call-"
        }
      },
      "name": "My dispatch rule"
    }
}"""

DISPATCH_METADATA = """{
  "dispatch_rule": {
    "metadata": "{\\"is_internal\\": true}",
    "rule": {
      "dispatchRuleIndividual": {
        "roomPrefix": "call-"
      }
    },
    "name": "My dispatch rule"
  }
}"""

DISPATCH_UPDATE = """{
  "name": "My updated dispatch rule",
  "rule": {
    "dispatchRuleCallee": {
      "roomPrefix": "number-",
      "randomize": false,
      "pin": "1234"
    }
  }
}"""
