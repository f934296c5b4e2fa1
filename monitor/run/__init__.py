"""The wiring: the pipeline (the stages top to bottom), the scheduler, the app."""
