"""Python clients for exchange-sim."""
