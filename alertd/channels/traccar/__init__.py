"""The Traccar gateway: commodity GPS SOS watches and trackers (GT06, H02, "watch" and 200 more protocols) reach
alertd through a Traccar server that forwards its events (and, optionally, its positions) as JSON.

protocol.py reads what Traccar sends (pure); http.py authenticates the gateway, hands the service typed values
(service/trackers.py) and answers at once: Traccar does not retry a forwarded event.
"""
