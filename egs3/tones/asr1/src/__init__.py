"""Tones recipe: DTMF-like digit sequences, synthesised at run time, recognised with CTC."""
