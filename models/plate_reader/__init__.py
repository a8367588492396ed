"""kozomol's own plate reader: a small CNN read with CTC, trained on `synth` plates only."""
