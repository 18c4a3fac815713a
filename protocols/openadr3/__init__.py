"""OpenADR 3 (3.0.1 and 3.1.0): the VEN adapter, its VTN counterpart, and the pure translation in between."""
