"""The rehearsal world: moto in its own process, seeded, simulated traffic, the rehearsal clock."""
