"""The parts the live :class:`~bgcam.pipeline.Pipeline` conducts, one concern per module.

- :mod:`.state`: the pipeline's life as an explicit state machine;
- :mod:`.worker`: the segmentation thread (stage hand-over, motion skipping, failure back-off);
- :mod:`.masks`: the mattes handed from that thread to the output thread, and their age policy;
- :mod:`.clock`: the output clock (pacing, late ticks, phase lock to the source);
- :mod:`.cards`: the placeholder frames (paused, camera unavailable, waiting for a viewer) and the
  last frame sent.
"""
