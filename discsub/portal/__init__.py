"""The subscriber portal: library, next disc, disc history, settings."""
