"""Observability: the request record, the log writer and readers, stats, metrics, /ui, status line.

Everything here is about *seeing* what the gateway did; nothing here decides or translates.
"""
