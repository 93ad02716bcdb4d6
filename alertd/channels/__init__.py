"""Channels turn a transport's request into a core call: parse, authenticate, answer."""
