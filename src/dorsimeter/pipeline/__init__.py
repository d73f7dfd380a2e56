"""The pipeline stage: a sensor's batches through calibration, fusion, the tibia angle and the
detectors (``Pipeline.push``, the same code live and on a recording), and the offline re-analysis.

It sits above ``core`` (numerics) and ``detect`` (reps, heel lift, clip slip)."""

from dorsimeter.pipeline.pipeline import Event, Pipeline, calibrate_recording
from dorsimeter.pipeline.replay import analyze, analyze_chunks

__all__ = ["Event", "Pipeline", "analyze", "analyze_chunks", "calibrate_recording"]
