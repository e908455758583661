"""The staff fulfillment queue and the operations dashboard."""
