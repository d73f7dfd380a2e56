"""The session: reps, holds, trials and per-side results a coach reads (``results``), the
wall-distance rule (``wall``), asymmetry bands (``asymmetry``) and what an exercise is
(``exercise``). Import the modules: this package stays empty, so that a command needing only the
exercise names does not load the detectors and the fusion."""
