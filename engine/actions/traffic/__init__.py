"""Feature flags, reads shifted, the latency baseline, watch windows, the consistency sampler."""
