"""Risk: what collateral is worth and what positions require."""
