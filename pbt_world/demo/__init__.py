"""The demo pipeline behind `pbt demo`: the world's agents through the real services, end to end."""
