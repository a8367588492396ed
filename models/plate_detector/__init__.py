"""kozomol's plate detector: rendering its training scenes, training, export to ONNX."""
