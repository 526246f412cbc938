"""Triton Inference Server as a second serving runtime for the same runners (PyTriton). services/ is the BentoML
adapter; this is the Triton one, as thin: services/runner_speech.py and services/runner_render.py do the work,
services/kserve.py says how their requests and results travel as tensors."""
