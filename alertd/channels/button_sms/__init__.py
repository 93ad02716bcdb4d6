"""The buttons' second path: a press that came by SMS because its MQTT ack did not come within `ack_timeout`.

Mosquitto has no clustering; alarm practice (EN 50136's dual-path categories) answers a failed path with a second
one. The firmware sends the unacknowledged press to the service number as one compact signed SMS, which the SMS
webhook hands here before anything else (`compact.is_button_sms`). The press it stands for goes through exactly
the checks and the de-duplication of an MQTT press (`service.buttons.receive_group`): one alert per
(device_id, seq), whichever path arrives first, whichever arrives twice.
"""
