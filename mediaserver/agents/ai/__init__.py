"""The `ai` verb on a live call: configuration, the conversation loop, the SWAIG seam."""
