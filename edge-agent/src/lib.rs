//! kozomol-edge-agent: the program on camera hardware.
