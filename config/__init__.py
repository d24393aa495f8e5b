"""The shipped YAML configs, installed as package data (`turnroute.config`)."""
