"""Evaluation of produced videos: metrics measured on the MP4 itself (not the renderer's internals), reports."""
