"""`python -m components e2e`: the release path run for real on loopback.

A stack's render applied to a local etcd + kube-apiserver (`components.verify`),
`nats-server` standing in for the JetStream EventBus, and argo-events' own EventSource
and Sensor programs started as its controller starts them; signed GitHub deliveries
are posted to the EventSource and the Workflows the Sensor creates (with its own
ServiceAccount's token) are checked. Modules: `runner` (order, checks, report), `bus`,
`programs`, `sandbox` (each program's own network and root), `deliveries`.
"""
