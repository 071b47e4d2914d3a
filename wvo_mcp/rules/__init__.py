"""The pure rules: decisions with no I/O, which import nothing above `errors` and `timeutil`.

Transitions, WSJF, retries, the task graph, routing and what it learns, identities, the bounds
of a command, what the merge queue probes next, what tidying may remove and which paths the
state folder owns."""
