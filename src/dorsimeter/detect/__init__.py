"""Detectors that run after the tibia angle: heel lift (three sources, ``heel``), reps and holds
(``reps``), clip slip, and their bank (``bank``). Import the modules: this package stays empty so
that the rep tracker and the source names load without the heel detectors' fusion."""
