"""Configuration: feeds.yaml → validated, frozen settings; `file:line` errors; reload."""
