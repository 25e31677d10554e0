"""What a person runs: the command line (``cli``) and the commands it dispatches to
(run, refilter, report, review), with what they need on the launcher (engines,
interrupts, the SDK worker boot of the localhost clusters)."""
