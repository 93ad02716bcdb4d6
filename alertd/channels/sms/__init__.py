"""The SMS channel: Twilio webhooks in (alerts, acknowledgements, delivery status)."""
