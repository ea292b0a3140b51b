"""The relay simulator: simulated official models ("personas") and dishonest relay behaviours, served over
real HTTP in the four wire dialects. It powers `relayaudit demo`, the end-to-end tests and the benchmarks.
"""
