"""Coarse filtering rules.  Each rule is a small pure function of a
``TextView`` (the text with its lines and words computed once) and its
thresholds, returning ``None`` (keep) or a reason string (drop).  Rules know
nothing about Beam; ``pipeline/coarse.py`` applies them."""
