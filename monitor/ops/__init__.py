"""Operations: logs, metrics, the health server, the status screen."""
