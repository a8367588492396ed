"""Synthetic licence-plate renderer for kozomol's detector and reader.

Everything here needs only numpy and Pillow, so it runs the same on a laptop,
in CI and on a GPU box without network access. Randomness always comes from an
explicit `numpy.random.Generator`, so a (seed, index) pair fixes one sample.
"""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
