"""Test harness: real Redis servers and real frontends, on ephemeral ports, cleaned up after use."""
