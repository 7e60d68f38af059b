"""Mock cupyx.scipy."""
