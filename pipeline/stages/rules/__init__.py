"""Coarse filtering rules.  Every rule is a ``rule.Rule``: a name (the drop
reason, counter and signal name), a pure measure of a ``TextView`` (the text
with its lines and words computed once) and the thresholds it is held to, with
the paper and its figure in the docstring of the function that builds it.
``zh.build``/``en.build`` return the enabled rules of a language in order.
Rules know nothing about Beam; ``pipeline/stages/coarse.py`` applies them.

Adding a rule: write the measure (``def emoji_share(v: TextView) -> float``),
add ``Rule("too_many_emoji", emoji_share, max=cfg["max_emoji_share"])`` to the
language's ``build``, and the threshold to ``defaults.yaml`` and
``pipeline/schema.py``."""
