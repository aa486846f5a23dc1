"""Exactly-once proof: a fault-injection soak over the whole path (issue 17).

``python -m soak --runs N --seed S --duration SECONDS`` starts the official Pub/Sub and
Firestore emulators, ibsim, the BigQuery fake and the worker under gunicorn, publishes
order-placing intents in small concurrent batches, injects the faults the seed chooses
(worker SIGKILL and SIGSTOP, gateway drops, blips, restarts, withheld end markers, Firestore
restarts, publish failures, duplicate deliveries), then reconciles what ibsim holds against the
journal and the outcome events and prints one report.

Modules, in the order a soak uses them: ``schedule`` (the plan, from the seed), ``stack`` (the
processes, the fault proxies), ``router`` (the push endpoint), ``pubsub`` (the push layout),
``probe`` (our own IB client connection), ``collector`` (outcome events), ``faults`` (one
injector per kind), ``harness`` (batches), ``reconcile`` (the verdict), ``report``, ``cli``.
"""
