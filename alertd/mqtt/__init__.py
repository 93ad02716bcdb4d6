"""MQTT: the service's broker connection (paho-mqtt driven from asyncio)."""
